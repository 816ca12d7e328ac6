"""`--residual zero-pad`: residual branches found in the dependency graph, pruned alone, and equal to
the same channels masked, in eager PyTorch and through the ONNX export in ONNX Runtime; then the
whole static command on a small ResNet measured in real eager worker processes."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from torch import nn
from torchvision.models import mobilenet_v2
from torchvision.models.mobilenetv2 import InvertedResidual
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from edgebench.board.zero_padded import _zero_padded_class
from edgebench.errors import UsageError
from edgebench.models import onnx_for
from edgebench.models.output_check import run_onnx
from edgebench.prune.baseline import saved_model
from edgebench.prune.importance import channel_scores
from edgebench.prune.masking import masked_channel_count, masked_channels
from edgebench.prune.model_stats import model_stats
from edgebench.prune.outputs import load_pruned
from edgebench.prune.surgery import build_graph
from edgebench.prune.zero_pad import cut_zero_padded, prunable_units, removed_channels, residual_branches
from edgebench.results.store import Store
from tiny_residual import ResidualOutput

SIZE = 32
# Zero-padding changes no arithmetic of a kept channel; only the convolution kernels chosen for a
# narrower layer may sum in another order.
RTOL, ATOL = 1e-5, 1e-5


def _resnet_basic():
    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10)


def _resnet_bottleneck():
    return ResNet(Bottleneck, [2, 1, 1, 1], num_classes=10)


def _mobilenet_v2():
    return mobilenet_v2(width_mult=0.25, num_classes=10)


def _expected_branches(model: nn.Module) -> set[str]:
    """The last convolution of every block that adds its input back, by the block's own flags."""
    names = set()
    for name, block in model.named_modules():
        if isinstance(block, InvertedResidual) and block.use_res_connect:
            names.add(f"{name}.conv.{len(block.conv) - 2}")
        elif isinstance(block, BasicBlock):
            names.add(f"{name}.conv2")
        elif isinstance(block, Bottleneck):
            names.add(f"{name}.conv3")
    return names


MODELS = {"resnet-basic": _resnet_basic, "resnet-bottleneck": _resnet_bottleneck, "mobilenet_v2-0.25": _mobilenet_v2}


def _randomised(model: nn.Module) -> nn.Module:
    """BatchNorm statistics and affine parameters drawn at random, so a removed channel's BatchNorm
    would shift it away from zero unless it is really gone."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                for tensor, low, high in ((module.running_mean, -1, 1), (module.running_var, 0.5, 2),
                                          (module.weight, 0.5, 1.5), (module.bias, -1, 1)):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)
    return model.eval()


def _half_of_every_branch(model: nn.Module, branches) -> dict[str, list[int]]:
    generator = torch.Generator().manual_seed(1)
    modules = dict(model.named_modules())
    drops = {}
    for name in branches:
        width = modules[name].out_channels
        drops[name] = sorted(torch.randperm(width, generator=generator)[: width // 2].tolist())
    return drops


def _zero_padded(name: str):
    torch.manual_seed(0)
    model = _randomised(MODELS[name]())
    example = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    graph = build_graph(model, example[:1])
    branches = residual_branches(graph)
    padded, history, paddings = cut_zero_padded(graph, branches, _half_of_every_branch(model, branches))
    assert history == []  # no coupled group was cut
    return model, example, branches, padded.eval(), paddings


@pytest.mark.parametrize("name", MODELS)
def test_branches_are_the_blocks_last_convolutions_never_a_skip_projection(name):
    model = MODELS[name]()
    graph = build_graph(model, torch.randn(1, 3, SIZE, SIZE))
    branches = residual_branches(graph)
    assert set(branches) == _expected_branches(model) and branches
    modules = dict(model.named_modules())
    for branch in branches.values():
        assert isinstance(modules[branch.norm], nn.BatchNorm2d) and branch.norm.rpartition(".")[0] == \
            branch.conv.rpartition(".")[0]
        assert branch.group in graph.groups
    # Each branch is scored alone: its own channels, from its own convolution and BatchNorm.
    units = prunable_units(graph, branches)
    assert set(units) == ({group for group in graph.groups} - {b.group for b in branches.values()}) | set(branches)
    scores = channel_scores("l1", model, {name: units[name] for name in branches}, task=None)
    for branch_name, score in scores.items():
        assert score.shape == (modules[branch_name].out_channels,)
        assert {item.dep.target.module for item in units[branch_name]} == \
            {modules[branch_name], modules[branches[branch_name].norm]}


@pytest.mark.parametrize("name", MODELS)
def test_the_zero_padded_model_equals_the_masked_one_and_is_smaller(name):
    model, example, branches, padded, paddings = _zero_padded(name)
    masked = masked_channels(model, removed_channels(paddings))
    removed = sum(len(padding.removed()) for padding in paddings)
    assert masked_channel_count(masked) == 2 * removed > 0  # masks on: each branch's conv and BatchNorm
    with torch.no_grad():
        torch.testing.assert_close(padded(example), masked(example), rtol=RTOL, atol=ATOL)
        # The removed channels mattered: the dense model computes something else.
        assert not torch.allclose(padded(example), model(example), rtol=1e-3, atol=1e-3)
    modules = dict(padded.named_modules())
    for padding in paddings:
        assert modules[padding.conv].out_channels == len(padding.kept) < padding.width
        assert isinstance(modules[padding.norm], _zero_padded_class())
    dense, smaller = model_stats(model, example[:1]), model_stats(padded, example[:1])
    assert smaller["macs"] < dense["macs"] and smaller["params"] < dense["params"]
    assert smaller["state_dict_bytes"] < dense["state_dict_bytes"]


@pytest.mark.parametrize("name", ["resnet-basic", "mobilenet_v2-0.25"])
def test_the_onnx_export_scatters_and_equals_the_masked_model_in_onnx_runtime(name, tmp_path):
    model, example, branches, padded, paddings = _zero_padded(name)
    masked = masked_channels(model, removed_channels(paddings))
    # Saved and exported as the worker does: a pickle through edgebench's own exporter.
    resolved = saved_model(padded, tmp_path / "padded.pt", f"3x{SIZE}x{SIZE}", name, None)
    exported = onnx_for(resolved, batch=2)
    ops = [node.op_type for node in onnx.load(str(exported)).graph.node]
    assert ops.count("Pad") == len(paddings), ops  # one per branch: nothing else pads in these models
    [[got]] = run_onnx(exported, [{resolved.inputs[0].name: example.numpy()}])
    with torch.no_grad():
        want = masked(example)
    torch.testing.assert_close(torch.from_numpy(got), want, rtol=RTOL, atol=ATOL)
    # The pickle loads back to the same model.
    loaded = torch.load(tmp_path / "padded.pt", weights_only=False)
    with torch.no_grad():
        torch.testing.assert_close(loaded(example), padded(example), rtol=0, atol=0)


def test_a_branch_coupled_with_a_kept_layer_is_left_alone():
    model = ResidualOutput().eval()
    graph = build_graph(model, torch.randn(1, 3, 8, 8))
    assert "conv" in graph.kept_reasons()  # the addition is the output: its branch conv is an output layer
    assert residual_branches(graph) == {}


@pytest.mark.parametrize("args, message", [
    (["--strategy", "static", "--residual", "padded"], "--residual must be one of coupled, zero-pad, not 'padded'"),
    (["--residual", "zero-pad"], "--residual zero-pad applies to --strategy static and allocate only"),
])
def test_bad_residual_options_are_one_line_and_exit_2(cli, tmp_path, args, message):
    proc = cli("prune", "--model", "tiny_residual:tiny_resnet", "--out", str(tmp_path / "o"), *args)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"edgebench: error: {message}")
    assert not (tmp_path / "o").exists()


def test_a_zero_padded_static_cut_is_measured_recorded_and_written_like_any_other(cli, tmp_path):
    out = tmp_path / "zero-pad"
    proc = cli("prune", "--model", "tiny_residual:tiny_resnet", "--task", "digits?size=16", "--strategy", "static",
               "--criterion", "l1", "--ratio", "0.5", "--round-to", "1", "--residual", "zero-pad",
               "--train-steps", "20", "--finetune-steps", "1", "--final-finetune-steps", "1", "--rounds", "2",
               "--block-time", "0.02", "--threads", "1", "--store", "results.db", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    logged = " ".join(proc.stderr.split())  # the console wraps long lines
    assert "zero-pad: 2 residual branch(es) scored and cut alone (3.conv2, 4.conv2)" in logged
    report = json.loads(proc.stdout)
    assert (report["strategy"], report["ratio"], report["residual"]) == ("static", 0.5, "zero-pad")
    assert [(p["conv"], p["norm"], p["width"], len(p["kept"])) for p in report["zero_padded"]] == \
        [("3.conv2", "3.bn2", 16, 8), ("4.conv2", "4.bn2", 32, 16)]
    [step] = report["steps"]
    assert "3.conv2 16->8 (zero-padded)" in step["group"] and "4.conv2 32->16 (zero-padded)" in step["group"]
    assert "4.downsample.0" not in step["group"] and "0 16->" not in step["group"]  # the skip paths keep theirs
    assert report["final"]["macs"] < report["baseline"]["macs"]
    assert report["onnx_check"]["ok"], report["onnx_check"]
    # pruning.json replays the coupled cuts, then the paddings: what model.pt2 holds.
    assert json.loads((out / "pruning.json").read_text())["zero_padded"] == report["zero_padded"]
    pruned = load_pruned(out)
    assert isinstance(pruned[3].bn2, _zero_padded_class()) and pruned[3].conv2.out_channels == 8
    program = torch.export.load(str(out / "model.pt2")).module()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), program(x), rtol=1e-5, atol=1e-5)
    with Store.open(tmp_path / "results.db", create=False) as store:
        records = [record.to_json_dict(with_samples=False) for record in store.records()]
    measured = [r["env"]["prune"] for r in records if r["env"]["prune"]["role"] in ("candidate", "final")]
    assert measured and all(prune["residual"] == "zero-pad" for prune in measured)
    # A padding that does not fit the model is refused in one line, as a history that does not.
    record = json.loads((out / "pruning.json").read_text())
    record["zero_padded"][0]["conv"] = "9.conv2"
    (out / "pruning.json").write_text(json.dumps(record))
    with pytest.raises(UsageError, match="cannot replay the pruning history of .*pruning.json"):
        load_pruned(out)

"""The pruner's output folder, for real: a resnet18 pruned by Torch-Pruning, saved, replayed from its
history, exported through edgebench's own ONNX path and checked in ONNX Runtime."""

import json
import shutil

import onnx
import pytest
import torch
import torch_pruning as tp

from edgebench.errors import UsageError
from edgebench.board.torch_models import build_module
from edgebench.models import ExportError
from edgebench.prune import outputs
from edgebench.prune.outputs import export_checked_onnx, load_pruned, save_pruned, write_report_json

RECIPE = {"format": "torchvision", "name": "resnet18", "kwargs": {"num_classes": 10}}
NAME = "torchvision:resnet18?num_classes=10"


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    """resnet18 at 32x32 with a quarter of its channels pruned (residual stages included), saved once."""
    model = build_module(RECIPE)
    example = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    pruner = tp.pruner.MagnitudePruner(model, example, importance=tp.importance.MagnitudeImportance(p=1),
                                       pruning_ratio=0.25, round_to=8, ignored_layers=[model.fc])
    pruner.step()
    out_dir = tmp_path_factory.mktemp("pruned")
    save_pruned(out_dir, model, RECIPE, NAME, example, pruner.pruning_history())
    return out_dir, model.eval(), example


@pytest.fixture
def copy_of(pruned, tmp_path):
    """A private copy of the saved folder, for tests that damage it."""
    out_dir = tmp_path / "out"
    shutil.copytree(pruned[0], out_dir)
    return out_dir


def shapes(model):
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def test_saved_files_and_record(pruned):
    out_dir, _, _ = pruned
    assert {path.name for path in out_dir.iterdir()} == {"state_dict.pt", "pruning.json", "model.pt2"}
    record = json.loads((out_dir / "pruning.json").read_text())
    assert record["format_version"] == 1
    assert (record["model"], record["recipe"]) == (NAME, RECIPE)
    assert (record["input_shape"], record["input_dtype"]) == ([1, 3, 32, 32], "float32")
    assert record["history"]
    for name, out_channels, idxs in record["history"]:
        assert isinstance(name, str) and isinstance(out_channels, bool)
        assert idxs and all(type(index) is int for index in idxs)


def test_round_trip_replays_the_history(pruned):
    out_dir, model, example = pruned
    reloaded = load_pruned(out_dir)
    assert not reloaded.training
    assert shapes(reloaded) == shapes(model)
    assert shapes(reloaded) != shapes(build_module(RECIPE))  # the weights do not fit the unpruned model
    assert reloaded.layer1[0].conv1.out_channels == 48  # 64 less a quarter, a multiple of 8
    with torch.no_grad():
        assert torch.equal(reloaded(example), model(example))


def test_state_dict_loads_with_safe_loading(pruned):
    out_dir, model, _ = pruned
    weights = torch.load(out_dir / "state_dict.pt", weights_only=True)
    assert {key: tuple(value.shape) for key, value in weights.items()} == shapes(model)


def test_program_loads_with_a_dynamic_batch(pruned):
    out_dir, model, example = pruned
    program = torch.export.load(out_dir / "model.pt2").module()
    batch = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(program(example), model(example))
        torch.testing.assert_close(program(batch), model(batch))


def test_a_model_that_fixes_its_batch_exports_static(tmp_path):
    class Flat(torch.nn.Module):  # reshapes to batch 1: torch.export refuses a dynamic batch
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(12, 2)

        def forward(self, x):
            return self.fc(x.reshape(1, -1))

    model, example = Flat().eval(), torch.randn(1, 3, 4)
    save_pruned(tmp_path, model, {"format": "callable", "target": "x:y"}, "flat", example, [])
    program = torch.export.load(tmp_path / "model.pt2")
    torch.testing.assert_close(program.module()(example), model(example))
    placeholder = next(node for node in program.graph.nodes if node.name == program.graph_signature.user_inputs[0])
    assert list(placeholder.meta["val"].shape) == [1, 3, 4]


def test_an_uncapturable_model_keeps_its_weights_and_record(pruned, copy_of, monkeypatch):
    _, model, example = pruned

    def refuse(*args, **kwargs):
        raise RuntimeError("data-dependent control flow\nlong details")

    monkeypatch.setattr(torch.export, "export", refuse)
    with pytest.raises(ExportError, match="torch.export cannot capture the pruned .*data-dependent") as caught:
        save_pruned(copy_of, model, RECIPE, NAME, example, [])
    assert "\n" not in str(caught.value)
    assert {path.name for path in copy_of.iterdir()} == {"state_dict.pt", "pruning.json"}  # the stale program is gone


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "pruning.json").unlink(), "no pruning.json in"),
    (lambda d: (d / "pruning.json").write_text("{not json"), "cannot read .*pruning.json"),
    (lambda d: (d / "pruning.json").write_text("[1, 2]"), "pruning.json is not a JSON object"),
    (lambda d: _edit(d, format_version=7), "pruning.json has format_version 7"),
    (lambda d: _edit(d, history="none", input_shape=None), "pruning.json lacks or mistypes input_shape, history"),
    (lambda d: _edit(d, input_dtype="floaty"), "unknown input_dtype 'floaty'"),
    (lambda d: _edit(d, history=[["layer9.conv", True, [0]]]), "cannot replay the pruning history of .*pruning.json"),
    (lambda d: _edit(d, history=[]), "cannot load .*state_dict.pt into the model .*pruning.json describes"),
    (lambda d: (d / "state_dict.pt").write_bytes(b"garbage"), "cannot load .*state_dict.pt"),
    (lambda d: (d / "state_dict.pt").unlink(), "no state_dict.pt in"),
])
def test_a_damaged_folder_is_one_line_naming_the_file(copy_of, damage, message):
    damage(copy_of)
    with pytest.raises(UsageError, match=message) as caught:
        load_pruned(copy_of)
    assert "\n" not in str(caught.value)


def _edit(out_dir, **changes):
    path = out_dir / "pruning.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_onnx_export_is_checked_against_eager(pruned, copy_of):
    _, model, example = pruned
    (copy_of / "model.onnx").write_bytes(b"stale")
    check = export_checked_onnx(copy_of, model, example)
    assert check["ok"], check
    assert check["error"] is None
    assert check["onnx_input"] == "x"  # the placeholder of model.pt2: resnet's forward(self, x)
    assert check["inputs_checked"] == 2
    assert 0 <= check["max_abs_diff"] < 1e-4 and 0 <= check["max_rel_diff"] < 1e-3
    assert [item.name for item in onnx.load(copy_of / "model.onnx").graph.input] == ["x"]


def test_a_mismatch_is_reported_not_raised(pruned, copy_of):
    _, model, example = pruned
    different = load_pruned(copy_of)
    with torch.no_grad():
        different.fc.bias += 0.5
    different.train()
    check = export_checked_onnx(copy_of, different, example)
    assert not check["ok"]
    assert check["error"].startswith("on the example input: output 0 differs from eager beyond rtol=0.001, atol=0.0001")
    assert check["max_abs_diff"] == pytest.approx(0.5, abs=1e-3)
    assert check["inputs_checked"] == 2
    assert different.training  # the caller's mode is restored


def test_an_export_failure_is_reported_and_leaves_no_stale_onnx(pruned, copy_of, monkeypatch):
    _, model, example = pruned
    (copy_of / "model.onnx").write_bytes(b"stale")

    def refuse(model, batch, cache_dir=None):
        raise ExportError(f"cannot export {model.name} to ONNX: UnsupportedOp: aten::mystery")

    monkeypatch.setattr(outputs, "onnx_for", refuse)
    check = export_checked_onnx(copy_of, model, example)
    assert check["ok"] is False
    assert check["error"] == "cannot export model.pt2 to ONNX: UnsupportedOp: aten::mystery"
    assert (check["inputs_checked"], check["max_abs_diff"], check["onnx_input"]) == (0, None, "x")
    assert not (copy_of / "model.onnx").exists()


def test_a_missing_program_is_reported(tmp_path):
    check = export_checked_onnx(tmp_path, torch.nn.Identity(), torch.zeros(1, 2))
    assert check["ok"] is False and "no such model file" in check["error"]


def test_write_report_is_indented_json_written_atomically(tmp_path):
    report = {"model": NAME, "steps": [{"iteration": 1, "accuracy": None, "verdict": "rejected"}], "wall_s": 1.5}
    path = write_report_json(tmp_path / "out", report)
    assert path == tmp_path / "out" / "report.json"
    assert json.loads(path.read_text()) == report
    assert path.read_text().startswith('{\n  "model"')
    write_report_json(tmp_path / "out", {"model": "again"})
    assert json.loads(path.read_text()) == {"model": "again"}
    assert [item.name for item in (tmp_path / "out").iterdir()] == ["report.json"]  # no temporary left

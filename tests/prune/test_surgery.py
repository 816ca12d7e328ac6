"""Channel surgery with Torch-Pruning, MAC counting, and the proposals built on them."""

import pytest
import torch
import torch_pruning as tp
import torchvision

from edgebench.prune.proposals import MAX_CUT_PER_STEP, propose
from edgebench.prune.surgery import (aligned_width, build_graph, cut, layer_macs, macs_and_params, macs_per_channel,
                                     pruned_copy)

EXAMPLE = torch.randn(1, 3, 32, 32)


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval()


def test_groups_are_named_by_root_module_and_the_classifier_is_not_one(resnet):
    graph = build_graph(resnet, EXAMPLE)
    assert graph.kept_modules() == [resnet.fc]
    assert graph.describe_kept() == "kept: output layers (fc: the task reads their widths)"
    assert graph.width("layer1.0.conv1") == 64 and graph.width("layer4.1.conv1") == 512
    # The stem and layer1's residual channels are one coupled group.
    assert "conv1" in graph.groups and "layer1.0.conv2" not in graph.groups
    assert len(graph.groups) == 12


def test_a_pruned_copy_is_smaller_keeps_the_highest_scores_and_its_history_replays(resnet):
    graph = build_graph(resnet, EXAMPLE)
    scores = torch.arange(64, dtype=torch.float32)  # channel i scores i: the first 24 go
    smaller, entry = pruned_copy(graph, "layer1.0.conv1", 40, scores)
    assert smaller.layer1[0].conv1.out_channels == 40 and smaller.layer1[0].conv2.in_channels == 40
    assert resnet.layer1[0].conv1.out_channels == 64  # the original is untouched
    assert torch.equal(smaller.layer1[0].conv1.weight, resnet.layer1[0].conv1.weight[24:])
    assert entry[0] == "layer1.0.conv1" and entry[1] is True and sorted(entry[2]) == list(range(24))
    # Replaying the history on a fresh model gives the same architecture.
    fresh = torchvision.models.resnet18(num_classes=10).eval()
    dependencies = tp.DependencyGraph().build_dependency(fresh, example_inputs=EXAMPLE)
    dependencies.load_pruning_history([entry])
    assert [p.shape for p in fresh.parameters()] == [p.shape for p in smaller.parameters()]
    with pytest.raises(ValueError, match="cannot keep 64 of 64"):
        pruned_copy(graph, "layer1.0.conv1", 64, scores)


def test_one_cut_of_several_groups_replays_as_one_history_entry_per_group(resnet):
    graph = build_graph(resnet, EXAMPLE)
    smaller, history = cut(graph, {"layer1.0.conv1": [0, 5], "layer3.0.conv1": range(100), "conv1": [63]})
    assert [entry[0] for entry in history] == ["layer1.0.conv1", "layer3.0.conv1", "conv1"]
    assert smaller.layer1[0].conv1.out_channels == 62 and smaller.layer3[0].conv1.out_channels == 156
    assert smaller.conv1.out_channels == 63 and smaller.layer1[1].conv2.out_channels == 63
    assert smaller(EXAMPLE).shape == (1, 10)
    fresh = torchvision.models.resnet18(num_classes=10).eval()
    tp.DependencyGraph().build_dependency(fresh, example_inputs=EXAMPLE).load_pruning_history(history)
    assert [p.shape for p in fresh.parameters()] == [p.shape for p in smaller.parameters()]
    with pytest.raises(ValueError, match="cannot remove 64 of 64 channels of conv1"):
        cut(graph, {"conv1": range(64)})


def test_macs_count_convolutions_and_linear_layers_and_fall_linearly_with_a_groups_width(resnet):
    graph = build_graph(resnet, EXAMPLE)
    macs, params = macs_and_params(resnet, EXAMPLE)
    assert params == sum(p.numel() for p in resnet.parameters())
    assert macs == sum(layer_macs(resnet, EXAMPLE).values())
    assert layer_macs(resnet, EXAMPLE)[resnet.fc] == 512 * 10
    # conv1 of layer2.0: 64 -> 128 channels, 3x3, stride 2 from 8x8 to 4x4 at 32x32 input.
    assert layer_macs(resnet, EXAMPLE)[resnet.layer2[0].conv1] == 128 * 4 * 4 * 64 * 9
    per_channel = macs_per_channel(graph, "layer2.0.conv1", layer_macs(resnet, EXAMPLE))
    smaller, _ = pruned_copy(graph, "layer2.0.conv1", 64, torch.rand(128))
    assert macs - macs_and_params(smaller, EXAMPLE)[0] == pytest.approx(64 * per_channel)


def test_aligned_width_rounds_down_but_never_below_the_alignment():
    assert [aligned_width(w, 8) for w in (64, 63, 9, 8, 3)] == [64, 56, 8, 8, 8]
    assert aligned_width(5, 1) == 5


def test_proposals_are_aligned_cut_at_most_half_and_follow_the_measured_rates(resnet):
    graph = build_graph(resnet, EXAMPLE)
    first = {p.group: p for p in propose(graph, 0.1, 16, {}, "latency")}
    assert set(first) == set(graph.groups)
    for proposal in first.values():
        assert proposal.keep % 16 == 0 and proposal.keep < proposal.width
        assert proposal.keep >= proposal.width * (1 - MAX_CUT_PER_STEP)
    # A group measured to save 1% of the latency per channel needs 10 channels for a 10% step:
    # 64 - 10 = 54, aligned down to 48.
    measured = {p.group: p for p in propose(graph, 0.1, 16, {"layer1.0.conv1": 0.01}, "latency")}
    assert measured["layer1.0.conv1"].keep == 48
    # A group that saved nothing gets its largest allowed cut.
    assert {p.group: p for p in propose(graph, 0.1, 16, {"conv1": -0.5}, "latency")}["conv1"].keep == 32


def test_flops_proposals_remove_the_step_share_of_macs(resnet):
    graph = build_graph(resnet, EXAMPLE)
    macs = macs_and_params(resnet, EXAMPLE)[0]
    for proposal in propose(graph, 0.02, 1, {}, "flops"):
        smaller, _ = pruned_copy(graph, proposal.group, proposal.keep, torch.rand(proposal.width))
        saved = 1 - macs_and_params(smaller, EXAMPLE)[0] / macs
        # Enough to meet the step unless capped at half the group; one channel fewer would not be.
        capped = proposal.keep == aligned_width(-(-proposal.width // 2), 1)
        assert saved >= 0.02 - 1e-9 or capped


def test_a_group_at_its_alignment_minimum_is_not_proposed():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3)).eval()
    graph = build_graph(model, torch.randn(1, 3, 8, 8))
    assert propose(graph, 0.1, 8, {}, "latency") == []
    assert [p.keep for p in propose(graph, 0.1, 4, {}, "latency")] == [4]

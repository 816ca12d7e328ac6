"""HRank and utilisation on post-activation feature maps; Taylor on the task's own loss."""

from __future__ import annotations

import pytest
import torch
import torch_pruning as tp
from torch import nn

from edgebench.prune.importance import channel_scores
from edgebench.prune.surgery import build_graph
from tiny_detection import DetectionTask, tiny_ssdlite

SIZE = 8
DEAD, LIVE = 0, 1


class RandomInputs:
    """A task that only hands out inputs (what the feature-map criteria read)."""

    name = "random"

    def sample_batch(self, size):
        return torch.randn(size, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(size)), torch.zeros(size)


def conv_bn_relu(activation=None):
    """Conv, BatchNorm (eval statistics) and an activation, then a classifier; channel DEAD's
    BatchNorm shift is far below anything the conv gives, channel LIVE's far above."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), activation or nn.ReLU(inplace=True),
                          nn.Conv2d(4, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    with torch.no_grad():
        model[1].bias[DEAD] = -1000.0
        model[1].bias[LIVE] = 1000.0
    return model


def first_group(model):
    graph = build_graph(model, torch.zeros(1, 3, SIZE, SIZE))
    return graph.groups, "0"


def test_hrank_reads_maps_after_batchnorm_and_relu_where_a_dead_channel_has_rank_zero():
    model = conv_bn_relu()
    groups, first = first_group(model)
    score = channel_scores("hrank", model, groups, RandomInputs(), sample_size=8)[first]
    # Post-activation: the channel ReLU kills has rank 0; the others stay of full rank 8.
    assert float(score[DEAD]) == 0.0 and float(score[LIVE]) > 0
    # Before the BatchNorm and ReLU every channel's map is of full rank: the criterion did not read there.
    with torch.no_grad():
        raw = model[0](RandomInputs().sample_batch(8)[0])
    assert int(torch.linalg.matrix_rank(raw[:, DEAD]).min()) == SIZE


def test_an_in_place_activation_read_in_the_hook_leaves_the_forward_alone():
    # LeakyReLU applied twice would change negative values: the hook must work on a copy.
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.1, inplace=True), nn.Conv2d(4, 4, 1),
                          nn.Flatten(), nn.Linear(4 * SIZE * SIZE, 2)).eval()
    groups, _ = first_group(model)
    seen = []
    model[2].register_forward_hook(lambda module, args, output: seen.append(args[0].clone()))
    channel_scores("hrank", model, groups, RandomInputs(), sample_size=4)
    expected = nn.functional.leaky_relu(model[0](RandomInputs().sample_batch(4)[0]), 0.1)
    assert torch.allclose(seen[0], expected)


def test_a_reused_activation_module_is_read_for_each_convolution():
    class Reused(nn.Module):  # torchvision's ResNet blocks call self.relu after each BatchNorm
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.relu = nn.ReLU(inplace=True)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            x = self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
            return self.fc(x.mean(dim=(2, 3)))

    torch.manual_seed(0)
    model = Reused().eval()
    with torch.no_grad():
        model.bn1.bias[DEAD] = model.bn2.bias[LIVE] = -1000.0
    groups, _ = first_group(model)
    scores = channel_scores("utilisation", model, groups, RandomInputs(), sample_size=8)
    assert scores["conv1"][DEAD] == 0 and scores["conv1"][LIVE] == 1
    assert scores["conv2"][LIVE] == 0 and scores["conv2"][DEAD] == 1


@pytest.mark.parametrize("activation", [nn.ReLU(), nn.Hardswish(), nn.SiLU()])
def test_utilisation_is_the_share_of_inputs_a_channel_is_active_on(activation):
    model = conv_bn_relu(activation)
    groups, first = first_group(model)
    score = channel_scores("utilisation", model, groups, RandomInputs(), sample_size=16)[first]
    assert float(score[DEAD]) == 0.0 and float(score[LIVE]) == 1.0
    assert ((score >= 0) & (score <= 1)).all()  # fractions, not divided by the group's mean


def test_utilisation_counts_inputs_not_pixels():
    # Channel 2 is active on exactly the inputs whose first pixel is positive: half of them.
    model = nn.Sequential(nn.Conv2d(3, 3, 1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(3 * SIZE * SIZE, 2))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].weight[2, 0] = 1.0

    class HalfPositive:
        name = "half"

        def sample_batch(self, size):
            inputs = -torch.ones(size, 3, SIZE, SIZE)
            inputs[: size // 2, 0, 0, 0] = 1.0
            return inputs, torch.zeros(size)

    groups, first = first_group(model.eval())
    score = channel_scores("utilisation", model, groups, HalfPositive(), sample_size=100)[first]
    assert score.tolist() == [0.0, 0.0, 0.5]


def test_utilisation_scores_256_inputs_by_default():
    asked = []

    class Counting(RandomInputs):
        def sample_batch(self, size):
            asked.append(size)
            return super().sample_batch(size)

    model = conv_bn_relu()
    groups, _ = first_group(model)
    channel_scores("utilisation", model, groups, Counting())
    channel_scores("hrank", model, groups, Counting())
    assert asked == [256, 64]


def test_taylor_on_a_detector_uses_the_tasks_loss_with_batchnorm_frozen():
    model, task = tiny_ssdlite(), DetectionTask()
    graph = build_graph(model, task.example_input)
    statistics = {name: buffer.clone() for name, buffer in model.named_buffers()}
    scores = channel_scores("taylor", model, graph.groups, task, sample_size=4)
    assert scores.keys() == graph.groups.keys()
    for group_id, score in scores.items():
        assert score.shape == (graph.width(group_id),) and torch.isfinite(score).all()
    # The dead channels pass no gradient; the others do.
    assert (scores["backbone.0"][:4] == 0).all() and (scores["backbone.0"][4:] > 0).all()
    assert all(torch.equal(statistics[name], buffer) for name, buffer in model.named_buffers())
    assert not any(module.training for module in model.modules())
    assert all(parameter.grad is None for parameter in model.parameters())


def test_the_post_activation_rule_follows_the_dependency_graph():
    model = conv_bn_relu()
    dependencies = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, 3, SIZE, SIZE))
    from edgebench.prune.importance import ACTIVATION_FUNCTIONS, _followers

    assert _followers(dependencies.module2node[model[0]]) == (model[1], ACTIVATION_FUNCTIONS["Relu"])
    assert _followers(dependencies.module2node[model[3]]) == (None, None)

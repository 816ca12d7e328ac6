"""Channel importance on real Torch-Pruning groups, residual couplings included."""

from __future__ import annotations

import pytest
import torch
import torch_pruning as tp
import torchvision
from torch import nn

from edgebench.errors import UsageError
from edgebench.prune.digits import digits_task
from edgebench.prune.importance import CRITERIA, channel_scores

# The channel every test silences; any index inside the smallest group would do.
SILENCED = 5


class TinyResidual(nn.Module):
    """The stem and the block's second conv are coupled by the addition, as in a ResNet."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.head = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x)
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return self.fc(self.head(torch.relu(x + y)))


class DigitsWithLoss:
    """The digits task with protocol v2's ``loss``: the cross-entropy of the logits."""

    def __init__(self):
        self.inner = digits_task(size=16)
        self.name, self.example_input = self.inner.name, self.inner.example_input
        self.evaluate, self.finetune, self.sample_batch = self.inner.evaluate, self.inner.finetune, self.inner.sample_batch

    def loss(self, model, inputs, labels):
        return nn.functional.cross_entropy(model(inputs), labels)


@pytest.fixture(scope="module")
def task():
    return DigitsWithLoss()


def grouped(model, task):
    torch.manual_seed(0)
    model.eval()
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=task.example_input)
    groups = graph.get_all_groups(ignored_layers=[model.fc], root_module_types=[nn.Conv2d, nn.Linear])
    return {f"g{number}": group for number, group in enumerate(groups)}


def residual_group(model, groups):
    """The group that prunes the stem's and conv2's outputs together."""
    for group in groups.values():
        out_layers = {dep.target.module for dep, _ in group if dep.handler == tp.prune_conv_out_channels}
        if model.conv2 in out_layers:
            assert model.stem[0] in out_layers  # the coupling the residual addition makes
            return group
    raise AssertionError("no group prunes conv2's outputs")


@torch.no_grad()
def silence(group, channel, everywhere=True):
    """Zero ``channel`` in the group's conv outputs (and, ``everywhere``, all its coupled weights)."""
    for dep, idxs in group:
        module, handler = dep.target.module, dep.handler
        index = idxs[channel]
        if handler == tp.prune_conv_out_channels:
            module.weight[index] = 0
            if module.bias is not None:
                module.bias[index] = 0
        elif not everywhere:
            continue
        elif handler == tp.prune_batchnorm_out_channels:
            module.weight[index] = 0
            module.bias[index] = 0
        elif handler in (tp.prune_conv_in_channels, tp.prune_linear_in_channels):
            module.weight[:, index] = 0


def fresh_model():
    torch.manual_seed(0)
    return TinyResidual().eval()


@pytest.mark.parametrize("criterion", CRITERIA)
def test_one_score_per_channel_for_every_resnet18_group(criterion, task):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    groups = grouped(model, task)
    assert len(groups) == 12
    scores = channel_scores(criterion, model, groups, task, sample_size=16)
    assert scores.keys() == groups.keys()
    for group_id, group in groups.items():
        score = scores[group_id]
        assert score.shape == (len(group[0].idxs),) and score.dtype == torch.float32
        assert torch.isfinite(score).all() and (score >= 0).all()
    assert not model.training
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(("criterion", "everywhere"), [("l1", True), ("taylor", True), ("hrank", False)])
def test_a_silenced_channel_scores_lowest_in_the_residual_group(criterion, everywhere, task):
    model = fresh_model()
    groups = grouped(model, task)
    group = residual_group(model, groups)
    silence(group, SILENCED, everywhere=everywhere)
    scores = channel_scores(criterion, model, groups, task)
    group_id = next(key for key, value in groups.items() if value is group)
    score = scores[group_id]
    assert len(score) == 8
    assert int(score.argmin()) == SILENCED and float(score[SILENCED]) == 0.0
    assert float(score.sort().values[1]) > 0  # the only one
    if criterion == "hrank":  # zero maps have rank 0; the others are (nearly) full rank
        assert (score[torch.arange(8) != SILENCED] > 0.9).all()


def test_taylor_leaves_no_gradients_and_moves_no_statistics(task):
    model = fresh_model()
    groups = grouped(model, task)
    buffers = {key: value.clone() for key, value in model.state_dict().items()}
    scores = channel_scores("taylor", model, groups, task)
    assert all(torch.isfinite(score).all() and (score >= 0).all() for score in scores.values())
    assert all(p.grad is None for p in model.parameters())
    assert not model.training
    assert all(torch.equal(buffers[key], value) for key, value in model.state_dict().items())


def test_hrank_removes_its_hooks_even_when_the_forward_fails(task):
    model = fresh_model()
    groups = grouped(model, task)

    class WrongInputs:
        name = "wrong"

        def sample_batch(self, size):
            return torch.zeros(size, 5, 16, 16), torch.zeros(size, dtype=torch.long)

    with pytest.raises(RuntimeError):
        channel_scores("hrank", model, groups, WrongInputs())
    assert all(not module._forward_hooks for module in model.modules())
    channel_scores("hrank", model, groups, task)
    assert all(not module._forward_hooks for module in model.modules())


def test_unknown_criterion_lists_the_known_ones(task):
    with pytest.raises(UsageError, match="unknown importance criterion 'l2'; choose one of l1, hrank, taylor, utilisation"):
        channel_scores("l2", fresh_model(), {}, task)


@pytest.mark.parametrize("criterion", ["hrank", "taylor", "utilisation"])
def test_data_criteria_need_sample_batch(criterion):
    class NoBatches:
        name = "bare"

    with pytest.raises(UsageError, match=f"^the {criterion} criterion needs task.sample_batch\\(size\\)"):
        channel_scores(criterion, fresh_model(), {}, NoBatches())


def test_taylor_needs_the_tasks_loss_in_one_line(task):
    class NoLoss:
        name = "lossless"
        sample_batch = task.sample_batch

    with pytest.raises(UsageError, match="^the taylor criterion needs task.loss\\(model, inputs, targets\\); "
                                         "task lossless has none$"):
        channel_scores("taylor", fresh_model(), {}, NoLoss())


def test_l1_needs_no_data():
    class NoBatches:
        name = "bare"

    model = fresh_model()
    groups = grouped(model, digits_task(size=16))
    scores = channel_scores("l1", model, groups, NoBatches())
    assert {len(score) for score in scores.values()} == {8, 16}


def test_l1_is_torch_pruning_group_l1_and_hrank_scores_linear_groups_alike(task):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 6), nn.ReLU(),
                          nn.Linear(6, 10)).eval()
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=task.example_input)
    groups = dict(enumerate(graph.get_all_groups(ignored_layers=[model[5]], root_module_types=[nn.Conv2d, nn.Linear])))
    linear = next(key for key, group in groups.items() if group[0].dep.target.module is model[3])
    l1 = channel_scores("l1", model, groups, task)
    for key, group in groups.items():
        assert torch.allclose(l1[key], tp.importance.GroupMagnitudeImportance(p=1)(group))
    assert torch.equal(channel_scores("hrank", model, groups, task)[linear], torch.ones(6))

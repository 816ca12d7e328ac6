"""The built-in digits task: real scikit-learn data, real training of a tiny network."""

from __future__ import annotations

import pytest
import torch
import torch_pruning as tp
from torch import nn

from edgebench.errors import UsageError
from edgebench.prune.digits import digits_task

DIGITS = 1797


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 10),  # for 16x16 inputs
    ).eval()


@pytest.fixture(scope="module")
def task():
    return digits_task(size=16)


def test_split_shapes_ranges_and_stratification(task):
    split = task.split
    assert split.train_x.shape == (1347, 1, 16, 16) and split.test_x.shape == (450, 1, 16, 16)
    assert split.train_x.dtype == torch.float32 and split.train_y.dtype == torch.int64
    assert torch.isfinite(split.train_x).all() and torch.isfinite(split.test_x).all()
    # Normalised with the training split's statistics.
    assert abs(float(split.train_x.mean())) < 1e-4 and abs(float(split.train_x.std()) - 1) < 1e-3
    assert split.train_y.min() >= 0 and split.train_y.max() <= 9
    train, test = torch.bincount(split.train_y, minlength=10), torch.bincount(split.test_y, minlength=10)
    # Stratified: each class gives the held-out split its quarter, to within one image.
    assert ((test - (train + test) * 0.25).abs() <= 1).all()


def test_split_is_a_disjoint_cover_of_the_data(task):
    train, test = set(task.split.train_index.tolist()), set(task.split.test_index.tolist())
    assert not train & test
    assert train | test == set(range(DIGITS))


def test_example_input_is_one_rgb_image_and_follows_size(task):
    assert task.example_input.shape == (1, 3, 16, 16) and task.example_input.dtype == torch.float32
    assert torch.equal(task.example_input[0, 0], task.example_input[0, 2])
    assert task.name == "digits?size=16"
    default = digits_task()
    assert default.example_input.shape == (1, 3, 32, 32) and default.name == "digits?size=32"


def test_same_seed_same_split_other_seed_other_split(task):
    again = digits_task(size=16)
    assert torch.equal(again.split.test_index, task.split.test_index)
    assert torch.equal(again.split.train_x, task.split.train_x)
    other = digits_task(size=16, seed=1)
    assert not torch.equal(other.split.test_index, task.split.test_index)
    assert other.name == "digits?size=16&seed=1"


def test_finetune_raises_accuracy_and_leaves_eval_mode_without_gradients():
    task = digits_task(size=16)
    model = tiny_net()
    before = task.evaluate(model)
    task.finetune(model, 30)
    after = task.evaluate(model)
    assert before < 0.3 and after > 0.8, (before, after)
    assert not model.training
    assert all(p.grad is None for p in model.parameters())


def test_finetune_is_deterministic_by_seed():
    states = []
    for _ in range(2):
        model = tiny_net()
        digits_task(size=16).finetune(model, 3)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])


def test_evaluate_changes_nothing_and_leaves_eval_mode(task):
    model = tiny_net().train()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    accuracy = task.evaluate(model)
    assert 0.0 <= accuracy <= 1.0 and isinstance(accuracy, float)
    assert not model.training
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())


def test_finetune_works_after_torch_pruning_changed_the_structure(task):
    model = tiny_net()
    task.finetune(model, 1)
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=task.example_input)
    graph.get_pruning_group(model[0], tp.prune_conv_out_channels, idxs=[0, 1, 2, 3]).prune()
    assert model[0].out_channels == 4 and model[4].in_channels == 4
    task.finetune(model, 2)  # a stale optimizer would hold the removed parameters
    assert 0.0 <= task.evaluate(model) <= 1.0


def test_sample_batch_comes_from_the_training_split(task):
    inputs, labels = task.sample_batch(32)
    assert inputs.shape == (32, 3, 16, 16) and labels.shape == (32,)
    train_rows = {tuple(row.flatten().tolist()) for row in task.split.train_x}
    assert all(tuple(image[0].flatten().tolist()) in train_rows for image in inputs)
    everything, _ = task.sample_batch(10_000)
    assert len(everything) == 1347


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"colour": 1}, "no option 'colour'; accepted: batch_size, lr, seed, size, test_fraction"),
        ({"size": 4}, "digits size must be an integer >= 8, got 4"),
        ({"size": True}, "digits size must be an integer"),
        ({"lr": 0}, "digits lr must be a positive number"),
        ({"batch_size": 1}, "digits batch_size must be an integer >= 2"),
        ({"test_fraction": 0.9}, "digits test_fraction must be between"),
    ],
)
def test_bad_options_are_usage_errors(options, message):
    with pytest.raises(UsageError, match=message):
        digits_task(**options)

"""The task protocol, version 2: optional attributes checked when present, frozen_norms, the
listing of registered tasks and the built-in tasks' options refused in one line."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from edgebench.errors import UsageError
from edgebench.prune.tasks import (
    DEFAULT_KIND, KINDS, TASKS, check_task, described, frozen_norms, load_task, task_listings,
)
from installed_plugin import install_plugin


class Complete:
    name = "complete"
    example_input = torch.zeros(1, 3, 4, 4)
    kind = "detection"
    metric = "mAP"
    untrained_below = 0.05

    def evaluate(self, model):
        return 0.5

    def finetune(self, model, budget):
        pass

    def metrics(self, model):
        return {"mAP": 0.5}

    def sample_batch(self, size):
        return torch.zeros(size, 3, 4, 4), []

    def loss(self, model, inputs, targets):
        return torch.zeros(())


def variant(**attributes):
    """A Complete task with some attributes replaced (None deletes nothing: it sets None)."""
    return type("Variant", (Complete,), attributes)()


def test_a_complete_task_passes_and_a_minimal_one_too():
    task = Complete()
    assert check_task(task, "x") is task
    minimal = type("Minimal", (), {"name": "m", "example_input": torch.zeros(1, 3, 2, 2),
                                   "evaluate": lambda self, model: 0.0, "finetune": lambda self, model, n: None})()
    assert check_task(minimal, "m") is minimal and getattr(minimal, "kind", DEFAULT_KIND) == "classification"


def test_a_task_lacking_evaluate_is_refused_in_one_line():
    lacking = type("Lacking", (), {"name": "l", "example_input": torch.zeros(1, 3, 2, 2),
                                   "finetune": lambda self, model, n: None})()
    with pytest.raises(UsageError, match=r"^task l has no evaluate\(model\)$"):
        check_task(lacking, "l")


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"kind": 5}, r"^task x has kind = 5; it needs a kind that is one of classification, detection, segmentation$"),
        ({"kind": "regression"}, r"^task x has kind = 'regression'; it needs a kind that is one of"),
        ({"metric": ""}, r"^task x has metric = ''; it needs a metric name"),
        ({"metrics": {"mAP": 1.0}}, r"^task x has metrics = \{'mAP': 1.0\}; it needs metrics\(model\) callable$"),
        ({"loss": 0.0}, r"^task x has loss = 0.0; it needs loss\(model, inputs, targets\) callable$"),
        ({"sample_batch": [1]}, r"^task x has sample_batch = \[1\]; it needs sample_batch\(size\) callable$"),
        ({"untrained_below": True}, r"^task x has untrained_below = True; it needs untrained_below as a number"),
        ({"untrained_below": 1.5}, r"^task x has untrained_below = 1.5; "),
        ({"untrained_below": float("nan")}, r"^task x has untrained_below = nan; "),
    ],
)
def test_optional_attributes_of_the_wrong_type_are_refused(attributes, message):
    with pytest.raises(UsageError, match=message):
        check_task(variant(**attributes), "x")


def test_frozen_norms_trains_all_but_batch_norm_and_restores_every_mode():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Sequential(nn.BatchNorm2d(4)))
    model.eval()
    model[2].train()  # a mixed state the caller chose must come back as it was
    before = {name: module.training for name, module in model.named_modules()}
    with frozen_norms(model) as same:
        assert same is model and model.training and model[0].training and model[3].training
        assert not model[1].training and not model[3][0].training
        statistics = model[1].running_mean.clone()
        model(torch.randn(2, 3, 5, 5))
        assert torch.equal(model[1].running_mean, statistics)  # eval-mode BatchNorm learns nothing
    assert {name: module.training for name, module in model.named_modules()} == before


def test_frozen_norms_restores_modes_when_the_body_raises():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).eval()
    with pytest.raises(RuntimeError), frozen_norms(model):
        raise RuntimeError("boom")
    assert not any(module.training for module in model.modules())


def test_every_builtin_task_is_listed_with_kind_metric_and_options():
    listings = {listing.name: listing for listing in task_listings()}
    assert list(listings)[:3] == ["digits", "digit-detection", "digit-segmentation"]
    expected = {"digits": ("classification", "accuracy"), "digit-detection": ("detection", "mAP"),
                "digit-segmentation": ("segmentation", "mIoU")}
    for name, (kind, metric) in expected.items():
        listing = listings[name]
        assert (listing.kind, listing.metric) == (kind, metric) and listing.kind in KINDS
        assert listing.options["seed"] == 0 and listing.description
    assert listings["digits"].options["size"] == 32
    assert listings["digit-detection"].options["size"] == 300
    assert listings["digit-segmentation"].options["size"] == 96


def test_a_built_task_matches_its_listing():
    for listing in task_listings():
        if listing.name in ("digits", "digit-segmentation"):
            task = load_task(f"{listing.name}?size=32&eval_scenes=2" if listing.name != "digits" else "digits?size=8")
            assert (task.kind, task.metric) == (listing.kind, listing.metric)


PLUGIN = """
    import torch

    class Plain:
        name = "plain"
        example_input = torch.zeros(1, 3, 4, 4)

        def evaluate(self, model):
            return 1.0

        def finetune(self, model, budget):
            pass
"""


def test_a_plugin_without_declarations_is_listed_as_such_and_a_broken_one_says_why(tmp_path, monkeypatch):
    install_plugin(tmp_path, "edgebench_task_listing_plugin", PLUGIN, {"edgebench.tasks": {
        "plain": "edgebench_task_listing_plugin:Plain", "gone": "edgebench_task_listing_plugin:Missing"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        listings = {listing.name: listing for listing in task_listings()}
    finally:
        sys.modules.pop("edgebench_task_listing_plugin", None)
    assert listings["plain"].kind is None and listings["plain"].options is None
    assert listings["gone"].description.startswith("cannot be loaded: AttributeError")


def test_described_marks_a_factory():
    @described("segmentation", "mIoU", {"size": 8})
    def factory(**options):
        """First line.

        More."""

    assert (factory.kind, factory.metric, factory.defaults) == ("segmentation", "mIoU", {"size": 8})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("digit-detection?size=x", r"^task digit-detection\?size=x: digit-detection size must be an integer >= 32, "
                                   r"got 'x'$"),
        ("digit-detection?colour=1", r"^task digit-detection\?colour=1: the digit-detection task has no option "
                                     r"'colour'; accepted: batch_size, eval_scenes, lr, max_digits, max_scale, "
                                     r"min_digits, min_scale, optimizer, seed, size, warmup$"),
        ("digit-segmentation?optimizer=rmsprop", r"digit-segmentation optimizer must be one of adamw, sgd, "
                                                 r"got 'rmsprop'$"),
        ("digit-segmentation?min_digits=3&max_digits=2", r"max_digits must be an integer between 3 and 6, got 2$"),
        ("digit-segmentation?min_scale=0.3&max_scale=0.2", r"max_scale must be between 0.3 and 0.5, got 0.2$"),
        ("digit-detection?eval_scenes=0", r"eval_scenes must be an integer >= 1, got 0$"),
        ("digit-detection?lr=-1", r"lr must be a positive number, got -1$"),
    ],
)
def test_bad_scene_task_options_are_one_line(spec, message):
    with pytest.raises(UsageError, match=message):
        load_task(spec)


def test_unknown_task_lists_every_builtin():
    with pytest.raises(UsageError, match="known tasks: digits, digit-detection, digit-segmentation"):
        load_task("digit-classification")
    assert "digit-detection" in TASKS and "digit-segmentation" in TASKS

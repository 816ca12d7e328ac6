"""Tasks: what the pruner fine-tunes and evaluates a model with (the task protocol, version 2).

A task is any object with:

- ``name: str``: display name, e.g. ``digits?size=32``.
- ``example_input: torch.Tensor``: one batch-1 input, shape (1, 3, H, W) float32; the dependency
  graph is traced with it.
- ``evaluate(model) -> float``: the task's headline metric on a held-out split, in [0, 1], higher
  is better (accuracy, COCO mAP@[.5:.95], mIoU); must not change weights; leaves the model in
  eval mode.
- ``finetune(model, budget: int) -> None``: trains in place for ``budget`` optimizer steps; must
  work on a model whose structure pruning changed (build the optimizer on every call); leaves the
  model in eval mode. ``--regularise`` adds its penalty's gradient between the backward pass and
  the step (``after_backward``), so it needs the steps taken by a ``torch.optim`` optimizer.
- optional ``kind: str``: ``"classification"`` (the default when absent), ``"detection"`` or
  ``"segmentation"``; optional ``metric: str``: the headline metric's name (``"accuracy"``,
  ``"mAP"``, ``"mIoU"``; ``"score"`` when absent).
- optional ``metrics(model) -> dict[str, float]``: every metric the task computes, the headline
  included (detection: ``"mAP"``, ``"mAP@0.5"``; segmentation: ``"mIoU"``, ``"pixel accuracy"``).
- optional ``sample_batch(size: int) -> (inputs, targets)``: from the training split; inputs a
  (N, 3, H, W) float tensor; targets: classification a (N,) int64 tensor of labels; detection a
  list of N dicts ``{"boxes": (K, 4) float xyxy pixels, "labels": (K,) int64}``, labels 1-based
  (0 is the background); segmentation a (N, H, W) int64 tensor of class indices (0 background).
  The ``hrank`` and ``taylor`` criteria need it.
- optional ``loss(model, inputs, targets) -> torch.Tensor``: the task's differentiable scalar
  training loss on a batch, computed in the model's current mode (the caller sets it; a
  torchvision detector returns its losses only in training mode, so put it there, for example
  with ``frozen_norms(model)``). Classification: cross-entropy of the logits; detection: the sum
  of the detector's loss dict; segmentation: cross-entropy of ``output["out"]`` (or of a plain
  tensor output) plus 0.5 x that of ``output["aux"]`` when present.
- optional ``untrained_below: float``: a model scoring below it counts as untrained and is
  trained first (``DEFAULT_UNTRAINED_BELOW`` when absent).

A detection task's model is a torchvision-API detector: ``model(images, targets)`` returns a dict
of losses in training mode, ``model(images)`` a list of ``{"boxes", "scores", "labels"}`` in eval
mode. A segmentation task's model returns a (N, C, H, W) tensor or a dict with ``"out"`` (and
optionally ``"aux"``), as torchvision's segmentation models do.

Specs: ``NAME[?k=v&...]`` names a task factory in the ``TASKS`` registry: the built-ins
(``digits``, ``digit-detection``, ``digit-segmentation``) or one a package registers under the
``edgebench.tasks`` entry-point group (``edgebench.board.registry``); ``package.module:callable[?k=v&...]``
imports the callable (from the current directory too, as a model spec does). Either is called
with the arguments and what it returns is checked. A factory may declare ``kind``, ``metric`` and
``defaults`` (its options) with ``@described(...)``, so ``edgebench tasks`` can list it unbuilt.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Optional, Protocol

import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from edgebench.board.registry import Registry
from edgebench.errors import UsageError
from edgebench.board.torch_models import ModelBuildError, _callable
from edgebench.models.spec import _CALLABLE_TARGET, parse_kwargs
from edgebench.board.runners.base import first_line

TASKS = Registry("task", "edgebench.tasks")
# Strings: a module is imported when its task is first asked for (each imports this one).
TASKS.add("digits", "edgebench.prune.digits:digits_task")
TASKS.add("digit-detection", "edgebench.prune.detection_task:digit_detection_task")
TASKS.add("digit-segmentation", "edgebench.prune.segmentation_task:digit_segmentation_task")
TASK_FORMS = "NAME[?key=value&...] or package.module:callable[?key=value&...]"

KINDS = ("classification", "detection", "segmentation")
DEFAULT_KIND = "classification"
DEFAULT_METRIC = "score"
DEFAULT_UNTRAINED_BELOW = 0.5


class Task(Protocol):
    """The required part of the interface above, for type checkers; tasks need not inherit from it."""

    name: str
    example_input: torch.Tensor

    def evaluate(self, model: torch.nn.Module) -> float: ...

    def finetune(self, model: torch.nn.Module, budget: int) -> None: ...


def load_task(spec: str) -> Task:
    """The task a spec names; UsageError naming the spec for anything that goes wrong."""
    target, _, query = spec.strip().partition("?")
    try:
        kwargs = parse_kwargs(query)
    except UsageError as exc:
        raise UsageError(f"task {spec}: {exc}") from None
    if target in TASKS:
        try:
            factory = TASKS.load(target)
        except Exception as exc:  # a plugin's import may raise anything
            raise UsageError(f"cannot load task {spec}: {type(exc).__name__}: {first_line(exc)}") from None
        return check_task(_made(lambda: factory(**kwargs), spec), spec)
    if not _CALLABLE_TARGET.fullmatch(target):
        known = TASKS.names()
        close = difflib.get_close_matches(target, known, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UsageError(f"unknown task {spec!r}; {hint}known tasks: {', '.join(known)}; use {TASK_FORMS}")
    # The same import rules as a model spec's callable: the current directory comes first.
    recipe = {"target": target, "kwargs": kwargs, "sys_path": [os.getcwd()]}
    return check_task(_made(lambda: _callable(recipe), spec), spec)


def _made(make: Callable[[], Any], spec: str) -> Any:
    """What ``make()`` returns; whatever it raises, as one line naming the spec."""
    try:
        return make()
    except ModelBuildError as exc:  # the callable cannot be imported
        raise UsageError(f"cannot load task {spec}: {exc}") from None
    except UsageError as exc:  # the task's own words on its arguments
        raise UsageError(f"task {spec}: {exc}") from None
    except Exception as exc:  # the user's code may raise anything, wrong arguments included
        raise UsageError(f"task {spec} failed: {type(exc).__name__}: {first_line(exc)}") from None


def _is_fraction(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and 0 <= value <= 1


_REQUIRED = (
    ("name", lambda value: isinstance(value, str), "name (str)"),
    ("example_input", lambda value: isinstance(value, torch.Tensor), "example_input (torch.Tensor)"),
    ("evaluate", callable, "evaluate(model)"),
    ("finetune", callable, "finetune(model, budget)"),
)
# Checked only when present: a task without them gets the defaults above.
_OPTIONAL = (
    ("kind", lambda value: value in KINDS, f"a kind that is one of {', '.join(KINDS)}"),
    ("metric", lambda value: isinstance(value, str) and bool(value), "a metric name (non-empty str)"),
    ("metrics", callable, "metrics(model) callable"),
    ("sample_batch", callable, "sample_batch(size) callable"),
    ("loss", callable, "loss(model, inputs, targets) callable"),
    ("untrained_below", _is_fraction, "untrained_below as a number in [0, 1]"),
)


def check_task(task: Any, spec: str) -> Task:
    """``task`` itself if it has the interface; UsageError naming the first thing it lacks or
    the first optional attribute of the wrong type."""
    for attribute, is_right, description in _REQUIRED:
        if not is_right(getattr(task, attribute, None)):
            raise UsageError(f"task {spec} has no {description}")
    for attribute, is_right, description in _OPTIONAL:
        if hasattr(task, attribute) and not is_right(getattr(task, attribute)):
            value = repr(getattr(task, attribute))
            shown = value if len(value) <= 40 else value[:37] + "..."
            raise UsageError(f"task {spec} has {attribute} = {shown}; it needs {description}")
    return task


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model's parameters live, so batches can follow it (CPU for a parameterless one)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def require_batches(task: Task, criterion: str) -> None:
    """UsageError unless the task can hand out training batches, as data-driven criteria need."""
    if not callable(getattr(task, "sample_batch", None)):
        raise UsageError(
            f"the {criterion} criterion needs task.sample_batch(size); task {task.name} has none"
        )


@contextlib.contextmanager
def frozen_norms(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``model`` in training mode with every BatchNorm in eval mode (running statistics used and
    left unchanged), so a detector returns its losses without a batch moving its statistics;
    every module's own mode is restored on exit."""
    modes = {module: module.training for module in model.modules()}
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    try:
        yield model
    finally:
        for module, training in modes.items():
            module.training = training


@contextlib.contextmanager
def after_backward(model: torch.nn.Module, callback: Callable[[], None]) -> Iterator[None]:
    """While open, ``callback()`` runs in every training step on ``model`` between the backward pass
    and the optimizer's step: before the step of any ``torch.optim`` optimizer that holds one of
    the model's parameters. A global optimizer hook, so every task's own ``finetune`` loop gets
    it without knowing (a regulariser adds its gradient there: ``edgebench.prune.regularise``)."""
    parameters = {id(parameter) for parameter in model.parameters()}

    def before_step(optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        if any(id(parameter) in parameters for group in optimizer.param_groups for parameter in group["params"]):
            callback()

    handle = register_optimizer_step_pre_hook(before_step)
    try:
        yield
    finally:
        handle.remove()


def described(kind: str, metric: str, defaults: dict[str, Any]) -> Callable[[Callable], Callable]:
    """Decorator for a task factory: what ``edgebench tasks`` lists without building the task."""
    def mark(factory: Callable) -> Callable:
        factory.kind, factory.metric, factory.defaults = kind, metric, dict(defaults)
        return factory
    return mark


class TaskListing(NamedTuple):
    """One registered task as ``edgebench tasks`` shows it; None where the factory declares nothing."""

    name: str
    kind: Optional[str]
    metric: Optional[str]
    options: Optional[dict[str, Any]]
    description: str


def task_listings() -> list[TaskListing]:
    """Every task in the registry, built-ins first; one that cannot be imported says why."""
    listings = []
    for name in TASKS.names():
        try:
            factory = TASKS.load(name)
        except Exception as exc:  # a plugin's import may raise anything
            listings.append(TaskListing(name, None, None, None,
                                        f"cannot be loaded: {type(exc).__name__}: {first_line(exc)}"))
            continue
        summary = (factory.__doc__ or "").strip().splitlines()
        listings.append(TaskListing(
            name, getattr(factory, "kind", None), getattr(factory, "metric", None),
            getattr(factory, "defaults", None), summary[0] if summary else "",
        ))
    return listings

"""Tasks: what the pruner fine-tunes and evaluates a model with.

A task is any object with:

- ``name: str``: display name, e.g. ``digits?size=32``.
- ``example_input: torch.Tensor``: one batch-1 input, e.g. shape (1, 3, 32, 32) float32; the
  dependency graph is traced with it.
- ``evaluate(model) -> float``: accuracy in [0, 1] on a held-out split; must not change weights;
  leaves the model in eval mode.
- ``finetune(model, budget: int) -> None``: trains in place for ``budget`` optimizer steps; must
  work on a model whose structure pruning changed (build the optimizer on every call); leaves the
  model in eval mode.
- optional ``sample_batch(size: int) -> tuple[Tensor, Tensor]``: inputs and labels from the
  training split; the ``hrank`` and ``taylor`` criteria need it.

Specs: ``NAME[?k=v&...]`` names a task factory in the ``TASKS`` registry: the built-in ``digits``
(``edgebench.prune.digits``) or one a package registers under the ``edgebench.tasks`` entry-point
group (``edgebench.board.registry``); ``package.module:callable[?k=v&...]`` imports the callable
(from the current directory too, as a model spec does). Either is called with the arguments and
what it returns is checked.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from typing import Any, Protocol

import torch

from edgebench.board.registry import Registry
from edgebench.errors import UsageError
from edgebench.board.torch_models import ModelBuildError, _callable
from edgebench.models.spec import _CALLABLE_TARGET, parse_kwargs
from edgebench.board.runners.base import first_line

TASKS = Registry("task", "edgebench.tasks")
# A string: the module is imported when the task is first asked for (it imports this one).
TASKS.add("digits", "edgebench.prune.digits:digits_task")
TASK_FORMS = "NAME[?key=value&...] or package.module:callable[?key=value&...]"


class Task(Protocol):
    """The interface above, for type checkers; tasks need not inherit from it."""

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


def check_task(task: Any, spec: str) -> Task:
    """``task`` itself if it has the interface; UsageError naming the first thing it lacks."""
    needs = (
        ("name", lambda value: isinstance(value, str), "name (str)"),
        ("example_input", lambda value: isinstance(value, torch.Tensor), "example_input (torch.Tensor)"),
        ("evaluate", callable, "evaluate(model)"),
        ("finetune", callable, "finetune(model, budget)"),
    )
    for attribute, is_right, description in needs:
        if not is_right(getattr(task, attribute, None)):
            raise UsageError(f"task {spec} has no {description}")
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

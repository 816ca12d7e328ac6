"""How important each channel of a pruning group is: higher scores are kept, the lowest removed.

A criterion is an object like Torch-Pruning's ``tp.importance.Importance``: ``criterion(group)``
returns one score per channel of a Torch-Pruning group (``group[0].idxs``, in that order), or None
when nothing in the group tells its channels apart. What it needs besides the group it says:

- ``needs_batches`` (default False): it scores from a training batch, ``task.sample_batch(size)``.
- ``prepared(model, groups, batch)`` (optional): a context manager around the scoring of all
  groups, for what a whole model gives at once (gradients, feature maps); it undoes it on exit.

Subclass ``Importance`` for the defaults. Criteria live in the ``IMPORTANCE`` registry: the
built-ins below by name, third-party ones under the ``edgebench.importance`` entry-point group, as
a class or a factory called with no arguments (``edgebench.board.registry``). Built-ins:

- ``l1``: L1 magnitude of every coupled weight (Torch-Pruning's ``GroupMagnitudeImportance``).
- ``hrank``: HRank (Lin et al., CVPR 2020), the average rank of each channel's feature maps over
  one training batch, summed over the group's convolutions whose outputs it prunes. Small maps
  say little (a 1x1 map has rank 0 or 1: ResNet-18's last stage at 32x32 inputs), and a group
  with no convolution output (Linear layers only) scores all its channels alike.
- ``taylor``: first-order Taylor, ``|w * dL/dw|`` over the coupled weights, on one training batch
  (Torch-Pruning's ``GroupTaylorImportance``).

The built-ins' scores are divided by their group's mean, Torch-Pruning's default for its own, so
scores from different groups and criteria are on one scale.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Optional

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

from edgebench.board.registry import NameList, Registry
from edgebench.board.runners.base import first_line
from edgebench.errors import UsageError
from edgebench.prune.tasks import Task, model_device, require_batches

IMPORTANCE = Registry("importance criterion", "edgebench.importance")
#: Every criterion name known here, built-ins first (read afresh, so installed plugins count).
CRITERIA = NameList(IMPORTANCE)
BATCH_SIZE = 64
Batch = tuple[torch.Tensor, torch.Tensor]


class Importance:
    """A channel criterion; see the module docstring."""

    needs_batches = False

    @contextlib.contextmanager
    def prepared(self, model: nn.Module, groups: dict[str, Any], batch: Optional[Batch]) -> Iterator[None]:
        yield

    def __call__(self, group: Any) -> Optional[torch.Tensor]:
        raise NotImplementedError


def criterion(name: str) -> Any:
    """A fresh instance of the criterion registered as ``name``; UsageError if there is none or
    it cannot be loaded."""
    if name not in IMPORTANCE:
        raise UsageError(IMPORTANCE.unknown(name))
    try:
        made = IMPORTANCE.load(name)()
    except Exception as exc:  # a plugin's import or constructor may raise anything
        raise UsageError(f"importance criterion {name} cannot be loaded: {type(exc).__name__}: "
                         f"{first_line(exc)}") from None
    if not callable(made):
        raise UsageError(f"importance criterion {name} is not callable as criterion(group)")
    return made


def check_criterion(name: str, task: Task) -> None:
    """UsageError unless ``name`` is a known criterion that ``task`` can feed."""
    if getattr(criterion(name), "needs_batches", False):
        require_batches(task, name)


def channel_scores(
    name: str, model: nn.Module, groups: dict[str, Any], task: Task, batch_size: int = BATCH_SIZE
) -> dict[str, torch.Tensor]:
    """One 1-D float score tensor per group id; ``model`` is left in eval mode without gradients."""
    scorer = criterion(name)
    batch = None
    if getattr(scorer, "needs_batches", False):
        require_batches(task, name)
        batch = task.sample_batch(batch_size)
    prepared = getattr(scorer, "prepared", None)
    with prepared(model, groups, batch) if prepared else contextlib.nullcontext():
        scores = {}
        for group_id, group in groups.items():
            score = scorer(group)
            # None: the group holds nothing the criterion reads; nothing tells its channels apart.
            scores[group_id] = _finish(torch.ones(len(group[0].idxs)) if score is None else score)
    return scores


@IMPORTANCE.register("l1")
class L1Importance(Importance):
    def __init__(self) -> None:
        self._library = tp.importance.GroupMagnitudeImportance(p=1)

    def __call__(self, group: Any) -> Optional[torch.Tensor]:
        return self._library(group)


@IMPORTANCE.register("hrank")
class HRankImportance(Importance):
    # Torch-Pruning has no HRank, so it is written here: hooks on the convolutions whose output
    # channels the groups prune record the mean rank of each channel's (H, W) feature maps.
    needs_batches = True

    def __init__(self) -> None:
        self._ranks: dict[int, torch.Tensor] = {}

    @contextlib.contextmanager
    def prepared(self, model: nn.Module, groups: dict[str, Any], batch: Optional[Batch]) -> Iterator[None]:
        convs = {id(dep.target.module): dep.target.module
                 for group in groups.values() for dep, _ in group if _prunes_conv_outputs(dep)}
        ranks: dict[int, torch.Tensor] = {}

        def record(module: nn.Module, _args: Any, output: torch.Tensor) -> None:
            # (N, C, H, W) -> (N, C) ranks, averaged over the batch; a reused module adds up per call.
            rank = torch.linalg.matrix_rank(output.float()).float().mean(dim=0).cpu()
            ranks[id(module)] = ranks.get(id(module), 0) + rank

        handles = [conv.register_forward_hook(record) for conv in convs.values()]
        try:
            model.eval()
            with torch.inference_mode():
                model(batch[0].to(model_device(model)))
        finally:
            for handle in handles:
                handle.remove()
        self._ranks = ranks
        try:
            yield
        finally:
            self._ranks = {}

    def __call__(self, group: Any) -> Optional[torch.Tensor]:
        score, seen = torch.zeros(len(group[0].idxs)), False
        for item in group:
            dep, idxs = item
            # Root indices of None: channels that do not map back to the group's, as Torch-Pruning skips.
            if (not _prunes_conv_outputs(dep) or id(dep.target.module) not in self._ranks
                    or any(index is None for index in item.root_idxs)):
                continue
            score.index_add_(0, torch.tensor(item.root_idxs), self._ranks[id(dep.target.module)][idxs])
            seen = True
        # No feature maps (a group of Linear layers): nothing tells its channels apart.
        return score / score.mean() if seen else None


@IMPORTANCE.register("taylor")
class TaylorImportance(Importance):
    needs_batches = True

    def __init__(self) -> None:
        self._library = tp.importance.GroupTaylorImportance()

    @contextlib.contextmanager
    def prepared(self, model: nn.Module, groups: dict[str, Any], batch: Optional[Batch]) -> Iterator[None]:
        inputs, labels = batch
        device = model_device(model)
        # Eval mode: a training-mode forward would move BatchNorm's running statistics.
        model.eval()
        model.zero_grad(set_to_none=True)
        try:
            F.cross_entropy(model(inputs.to(device)), labels.to(device)).backward()
            yield
        finally:
            model.zero_grad(set_to_none=True)

    def __call__(self, group: Any) -> Optional[torch.Tensor]:
        return self._library(group)


def _prunes_conv_outputs(dep: Any) -> bool:
    return isinstance(dep.target.module, nn.Conv2d) and dep.handler == tp.prune_conv_out_channels


def _finish(score: torch.Tensor) -> torch.Tensor:
    # An all-zero group divided by its mean is 0/0; zero is the honest score for it.
    return torch.nan_to_num(score.detach().float().cpu(), nan=0.0, posinf=0.0, neginf=0.0)

"""How important each channel of a pruning group is: higher scores are kept, the lowest removed.

``groups`` maps an id to a Torch-Pruning group of ``model`` (from ``DG.get_all_groups``); a
group's channels are ``group[0].idxs``, and each score tensor has one entry per channel, in that
order. Criteria:

- ``l1``: L1 magnitude of every coupled weight (Torch-Pruning's ``GroupMagnitudeImportance``).
- ``taylor``: first-order Taylor, ``|w * dL/dw|`` over the coupled weights, on one training batch
  (Torch-Pruning's ``GroupTaylorImportance``).
- ``hrank``: HRank (Lin et al., CVPR 2020), the average rank of each channel's feature maps over
  one training batch, summed over the group's convolutions whose outputs it prunes. Small maps
  say little (a 1x1 map has rank 0 or 1: ResNet-18's last stage at 32x32 inputs), and a group
  with no convolution output (Linear layers only) scores all its channels alike.

Every criterion's scores are divided by their group's mean, Torch-Pruning's default for its own,
so scores from different groups and criteria are on one scale.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

from edgebench.errors import UsageError
from edgebench.prune.tasks import Task, model_device, require_batches

CRITERIA = ("l1", "hrank", "taylor")
BATCH_SIZE = 64


def channel_scores(
    criterion: str, model: nn.Module, groups: dict[str, Any], task: Task, batch_size: int = BATCH_SIZE
) -> dict[str, torch.Tensor]:
    """One 1-D float score tensor per group id; ``model`` is left in eval mode without gradients."""
    if criterion not in CRITERIA:
        raise UsageError(f"unknown importance criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    if criterion == "l1":
        return _library_scores(tp.importance.GroupMagnitudeImportance(p=1), groups)
    require_batches(task, criterion)
    inputs, labels = task.sample_batch(batch_size)
    if criterion == "taylor":
        return _taylor_scores(model, groups, inputs, labels)
    return _hrank_scores(model, groups, inputs)


def _library_scores(importance: tp.importance.Importance, groups: dict[str, Any]) -> dict[str, torch.Tensor]:
    scores = {}
    for group_id, group in groups.items():
        score = importance(group)
        # None: the group holds no weight the criterion reads; nothing tells its channels apart.
        scores[group_id] = _finish(torch.ones(len(group[0].idxs)) if score is None else score)
    return scores


def _taylor_scores(model: nn.Module, groups: dict[str, Any], inputs: torch.Tensor,
                   labels: torch.Tensor) -> dict[str, torch.Tensor]:
    device = model_device(model)
    # Eval mode: a training-mode forward would move BatchNorm's running statistics.
    model.eval()
    model.zero_grad(set_to_none=True)
    try:
        F.cross_entropy(model(inputs.to(device)), labels.to(device)).backward()
        return _library_scores(tp.importance.GroupTaylorImportance(), groups)
    finally:
        model.zero_grad(set_to_none=True)


def _hrank_scores(model: nn.Module, groups: dict[str, Any], inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    # Torch-Pruning has no HRank, so it is written here: hooks on the convolutions whose output
    # channels the groups prune record the mean rank of each channel's (H, W) feature maps.
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
            model(inputs.to(model_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    scores = {}
    for group_id, group in groups.items():
        score, seen = torch.zeros(len(group[0].idxs)), False
        for item in group:
            dep, idxs = item
            # Root indices of None: channels that do not map back to the group's, as Torch-Pruning skips.
            if (not _prunes_conv_outputs(dep) or id(dep.target.module) not in ranks
                    or any(index is None for index in item.root_idxs)):
                continue
            score.index_add_(0, torch.tensor(item.root_idxs), ranks[id(dep.target.module)][idxs])
            seen = True
        # No feature maps (a group of Linear layers): nothing tells its channels apart.
        scores[group_id] = _finish(score / score.mean() if seen else torch.ones_like(score))
    return scores


def _prunes_conv_outputs(dep: Any) -> bool:
    return isinstance(dep.target.module, nn.Conv2d) and dep.handler == tp.prune_conv_out_channels


def _finish(score: torch.Tensor) -> torch.Tensor:
    # An all-zero group divided by its mean is 0/0; zero is the honest score for it.
    return torch.nan_to_num(score.detach().float().cpu(), nan=0.0, posinf=0.0, neginf=0.0)

"""How important each channel of a pruning group is: higher scores are kept, the lowest removed.

A criterion is an object like Torch-Pruning's ``tp.importance.Importance``: ``criterion(group)``
returns one score per channel of a Torch-Pruning group (``group[0].idxs``, in that order), or None
when nothing in the group tells its channels apart. What it needs besides the group it says:

- ``needs_batches`` (default False): it scores from training inputs, ``task.sample_batch(n)``,
  ``n`` its ``sample_size`` (default 64) unless the caller gives another (``--score-inputs``).
- ``needs_loss`` (default False): it needs the task's training loss, ``task.loss(model, inputs,
  targets)``.
- ``prepared(model, groups, batch, task)`` (optional): a context manager around the scoring of
  all groups, for what a whole model gives at once (gradients, feature maps); it undoes it on exit.

Subclass ``Importance`` for the defaults. Criteria live in the ``IMPORTANCE`` registry: the
built-ins below by name, third-party ones under the ``edgebench.importance`` entry-point group, as
a class or a factory called with no arguments (``edgebench.board.registry``). Built-ins:

- ``l1``: L1 magnitude of every coupled weight (Torch-Pruning's ``GroupMagnitudeImportance``).
- ``hrank``: HRank (Lin et al., CVPR 2020), the average rank of each channel's feature maps over
  64 training inputs, summed over the group's convolutions whose outputs it prunes. As the
  official implementation, the maps are taken after what follows the convolution: a BatchNorm
  directly after it (eval statistics), then an activation (``post_activation_means``).
  Small maps say little (a 1x1 map has rank 0 or 1: ResNet-18's last stage at 32x32 inputs), and
  a group with no convolution output (Linear layers only) scores all its channels alike.
- ``taylor``: first-order Taylor, ``|w * dL/dw|`` over the coupled weights, with ``L`` the task's
  own loss (``task.loss``, required) on 64 training inputs, computed in training mode with every
  BatchNorm in eval mode (detectors give their losses in training mode only; no running
  statistic moves); Torch-Pruning's ``GroupTaylorImportance``.
- ``utilisation``: the fraction of 256 training inputs for which a channel is active: its
  post-activation feature map (the same maps as ``hrank``) has a value above zero for that input.
  After an activation that also goes negative (Hardswish, SiLU, LeakyReLU), active still means
  above zero. A group's score is the mean over its convolutions whose outputs it prunes; a group
  with none (Linear layers only) scores 1 for every channel. From the Parsimonious Inference
  study of SSD back-ends, which pruned kernels active on under 5% of the inputs
  (``edgebench prune --strategy static``).

``l1``, ``hrank`` and ``taylor`` scores are divided by their group's mean, Torch-Pruning's default
for its own, so scores from different groups and criteria are on one scale; ``utilisation``
scores are absolute fractions in [0, 1], so one threshold means the same in every group.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any, Optional

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

from edgebench.board.registry import NameList, Registry
from edgebench.board.runners.base import first_line
from edgebench.errors import UsageError
from edgebench.prune.tasks import Task, frozen_norms, model_device, require_batches

IMPORTANCE = Registry("importance criterion", "edgebench.importance")
#: Every criterion name known here, built-ins first (read afresh, so installed plugins count).
CRITERIA = NameList(IMPORTANCE)
BATCH_SIZE = 64
# Feature-map criteria run their inputs through the model this many at a time.
FORWARD_CHUNK = 64
# Activations the feature-map criteria apply after a convolution (and its BatchNorm), by the
# autograd function Torch-Pruning's graph names them with (it sees them as element-wise
# operations, not modules). Hardtanh is taken as ReLU6 and LeakyReLU at slope 0.01, their usual
# settings in CNNs; the graph does not say which arguments they were called with.
ACTIVATION_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "Relu": F.relu, "Hardtanh": F.relu6, "LeakyRelu": F.leaky_relu, "Hardswish": F.hardswish, "Silu": F.silu,
    "Gelu": F.gelu, "Mish": F.mish, "Elu": F.elu, "Hardsigmoid": F.hardsigmoid, "Sigmoid": torch.sigmoid,
    "Tanh": torch.tanh,
}
Batch = tuple[torch.Tensor, Any]


class Importance:
    """A channel criterion; see the module docstring."""

    needs_batches = False
    needs_loss = False
    sample_size = BATCH_SIZE

    @contextlib.contextmanager
    def prepared(self, model: nn.Module, groups: dict[str, Any], batch: Optional[Batch], task: Task) -> Iterator[None]:
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
    _check_task(criterion(name), name, task)


def _check_task(scorer: Any, name: str, task: Task) -> None:
    if getattr(scorer, "needs_batches", False):
        require_batches(task, name)
    if getattr(scorer, "needs_loss", False) and not callable(getattr(task, "loss", None)):
        raise UsageError(f"the {name} criterion needs task.loss(model, inputs, targets); task {task.name} has none")


def channel_scores(
    name: str, model: nn.Module, groups: dict[str, Any], task: Task, sample_size: Optional[int] = None
) -> dict[str, torch.Tensor]:
    """One 1-D float score tensor per group id; ``model`` is left in eval mode without gradients.
    ``sample_size``: how many training inputs a data-driven criterion scores from (default: its own)."""
    scorer = criterion(name)
    _check_task(scorer, name, task)
    batch = None
    if getattr(scorer, "needs_batches", False):
        batch = task.sample_batch(sample_size or getattr(scorer, "sample_size", BATCH_SIZE))
    prepared = getattr(scorer, "prepared", None)
    with prepared(model, groups, batch, task) if prepared else contextlib.nullcontext():
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


class FeatureMapImportance(Importance):
    """A criterion from each channel's post-activation feature maps: ``statistic(maps)`` turns the
    (N, C, H, W) maps of one call into (N, C) values, averaged over inputs per convolution."""

    needs_batches = True

    def __init__(self) -> None:
        self._means: dict[int, torch.Tensor] = {}

    @staticmethod
    def statistic(maps: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @contextlib.contextmanager
    def prepared(self, model: nn.Module, groups: dict[str, Any], batch: Optional[Batch], task: Task) -> Iterator[None]:
        self._means = post_activation_means(model, groups, batch[0], self.statistic)
        try:
            yield
        finally:
            self._means = {}

    def _summed(self, group: Any) -> tuple[torch.Tensor, int]:
        """The group's per-channel values summed over its convolutions, and how many there were."""
        score, convs = torch.zeros(len(group[0].idxs)), 0
        for item in group:
            dep, idxs = item
            # Root indices of None: channels that do not map back to the group's, as Torch-Pruning skips.
            if (not _prunes_conv_outputs(dep) or id(dep.target.module) not in self._means
                    or any(index is None for index in item.root_idxs)):
                continue
            score.index_add_(0, torch.tensor(item.root_idxs), self._means[id(dep.target.module)][idxs])
            convs += 1
        return score, convs


@IMPORTANCE.register("hrank")
class HRankImportance(FeatureMapImportance):
    # Torch-Pruning has no HRank, so it is written here.

    @staticmethod
    def statistic(maps: torch.Tensor) -> torch.Tensor:
        return torch.linalg.matrix_rank(maps.float())

    def __call__(self, group: Any) -> Optional[torch.Tensor]:
        score, convs = self._summed(group)
        # No feature maps (a group of Linear layers): nothing tells its channels apart.
        return score / score.mean() if convs else None


@IMPORTANCE.register("taylor")
class TaylorImportance(Importance):
    needs_batches = True
    needs_loss = True

    def __init__(self) -> None:
        self._library = tp.importance.GroupTaylorImportance()

    @contextlib.contextmanager
    def prepared(self, model: nn.Module, groups: dict[str, Any], batch: Optional[Batch], task: Task) -> Iterator[None]:
        inputs, targets = batch
        device = model_device(model)
        model.zero_grad(set_to_none=True)
        try:
            with frozen_norms(model):
                task.loss(model, inputs.to(device), _to_device(targets, device)).backward()
            yield
        finally:
            model.zero_grad(set_to_none=True)
            model.eval()

    def __call__(self, group: Any) -> Optional[torch.Tensor]:
        return self._library(group)


@IMPORTANCE.register("utilisation")
class UtilisationImportance(FeatureMapImportance):
    sample_size = 256

    @staticmethod
    def statistic(maps: torch.Tensor) -> torch.Tensor:
        return (maps.flatten(2) > 0).any(dim=2)

    def __call__(self, group: Any) -> Optional[torch.Tensor]:
        score, convs = self._summed(group)
        return score / convs if convs else None


def post_activation_means(model: nn.Module, groups: dict[str, Any], inputs: torch.Tensor,
                          statistic: Callable[[torch.Tensor], torch.Tensor]) -> dict[int, torch.Tensor]:
    """For each convolution whose output channels a group prunes (by ``id``): ``statistic`` of its
    post-activation maps, one value per channel, averaged over ``inputs`` and over the calls of a
    reused convolution. The model runs in eval mode on ``inputs`` in chunks.

    Post-activation: what follows the convolution in the dependency graph is applied to its
    output in the hook, functionally and out of place: a BatchNorm directly after it (its eval
    statistics), then an activation after that or directly after the convolution (one of
    ``ACTIVATION_FUNCTIONS``, or a PReLU module). The model's own forward is untouched (its
    in-place activations included), and a module the model calls more than once (torchvision's
    ResNet blocks reuse ``self.relu``) is no concern: the graph says what follows each conv."""
    followers = {}
    for group in groups.values():
        for dep, _ in group:
            if _prunes_conv_outputs(dep):
                followers[dep.target.module] = _followers(dep.target)
    sums: dict[int, torch.Tensor] = {}
    counts: dict[int, int] = {}

    def record(conv: nn.Module, _args: Any, output: torch.Tensor) -> None:
        values = statistic(_activated(output, *followers[conv])).float().sum(dim=0).cpu()
        sums[id(conv)] = sums.get(id(conv), 0) + values
        counts[id(conv)] = counts.get(id(conv), 0) + output.shape[0]

    handles = [conv.register_forward_hook(record) for conv in followers]
    try:
        model.eval()
        with torch.inference_mode():
            for chunk in inputs.split(FORWARD_CHUNK):
                model(chunk.to(model_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    return {key: total / counts[key] for key, total in sums.items()}


def _followers(node: Any) -> tuple[Optional[nn.Module], Optional[Callable[[torch.Tensor], torch.Tensor]]]:
    """The BatchNorm directly after a convolution's graph node, and the activation after that (or
    directly after the convolution) as an out-of-place function; each None when there is none.
    Only a node's sole consumer counts: a map that branches is read as it leaves the convolution."""
    norm = activation = None
    consumers = node.outputs
    if len(consumers) == 1 and isinstance(consumers[0].module, nn.modules.batchnorm._BatchNorm):
        norm, consumers = consumers[0].module, consumers[0].outputs
    if len(consumers) == 1:
        follower = consumers[0].module
        if isinstance(follower, nn.PReLU):
            activation = follower.forward  # forward(), not the call: its hooks are not this criterion's
        elif isinstance(follower, tp.ops._ElementWiseOp):
            activation = ACTIVATION_FUNCTIONS.get(re.sub(r"Backward\d*$", "", follower._grad_fn))
    return norm, activation


def _activated(maps: torch.Tensor, norm: Optional[nn.Module],
               activation: Optional[Callable[[torch.Tensor], torch.Tensor]]) -> torch.Tensor:
    if norm is not None:
        # Eval statistics, as the model's forward in eval mode uses (batch statistics without any).
        maps = F.batch_norm(maps, norm.running_mean, norm.running_var, norm.weight, norm.bias,
                            training=norm.running_mean is None, momentum=0.0, eps=norm.eps)
    return activation(maps) if activation is not None else maps


def _to_device(targets: Any, device: torch.device) -> Any:
    """Targets on ``device``: a tensor, or a detection task's list of dicts of tensors."""
    if isinstance(targets, torch.Tensor):
        return targets.to(device)
    if isinstance(targets, (list, tuple)):
        return type(targets)(_to_device(item, device) for item in targets)
    if isinstance(targets, dict):
        return {key: _to_device(value, device) for key, value in targets.items()}
    return targets


def _prunes_conv_outputs(dep: Any) -> bool:
    return isinstance(dep.target.module, nn.Conv2d) and dep.handler == tp.prune_conv_out_channels


def _finish(score: torch.Tensor) -> torch.Tensor:
    # An all-zero group divided by its mean is 0/0; zero is the honest score for it.
    return torch.nan_to_num(score.detach().float().cpu(), nan=0.0, posinf=0.0, neginf=0.0)

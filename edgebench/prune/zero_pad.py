"""``edgebench prune --residual zero-pad``: a residual branch's output channels pruned alone.

A residual addition couples the channels of everything it adds, so Torch-Pruning's group for them
spans the stage: cutting the last convolution of one branch removes the same channels from the
stem or projection that feeds the stage, from every other branch adding into it and from every
layer reading it (``--residual coupled``, the default). Zero-padding, as the TU Wien study of
measurement-based autopruning did for MobileNetV2, prunes the branch's last convolution and its
BatchNorm alone and scatters their output back into zeros of the original width before the
addition (``edgebench.board.zero_padded``): shapes stay, the branch computes fewer channels, the
rest of the group is untouched.

A branch, in the dependency graph: a convolution (not grouped) of a prunable group whose output
goes, through at most a BatchNorm that is its only consumer, only into an addition, and whose
input is not where another operand of that addition comes from through a convolution (then it is
the skip path: ResNet's downsample projection starts at the block's input, as its branch does). A
group touching a kept layer (``surgery.KeptLayers``) is no prunable group, so its branches are
left alone.

The zero-padded model computes what the same model with the branch's removed channels masked
computes (``masking.masked_channels(model, removed_channels(paddings))``): a masked convolution
row and BatchNorm scale and shift give zeros, as the scatter does (``tests/prune/test_zero_pad.py``
checks it, eager and through ONNX Runtime).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Optional

import torch_pruning as tp
from torch import nn

from edgebench.board.zero_padded import zero_padded
from edgebench.prune.surgery import PRUNABLE_TYPES, Graph, cut, quiet_torch_pruning

RESIDUAL_MODES = ("coupled", "zero-pad")


@dataclass(frozen=True)
class Branch:
    """A residual branch's last convolution, the BatchNorm right after it, and the coupled group
    its channels belong to."""

    conv: str
    norm: Optional[str]
    group: str


@dataclass(frozen=True)
class Padding:
    """One branch pruned alone: what ``pruning.json`` records and ``pad`` replays."""

    conv: str
    norm: Optional[str]
    width: int  # the addition's width
    kept: tuple[int, ...]  # the original indices of the channels the branch still computes

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> "Padding":
        return cls(str(entry["conv"]), None if entry["norm"] is None else str(entry["norm"]), int(entry["width"]),
                   tuple(int(index) for index in entry["kept"]))

    def as_dict(self) -> dict[str, Any]:
        return {"conv": self.conv, "norm": self.norm, "width": self.width, "kept": list(self.kept)}

    def removed(self) -> list[int]:
        return sorted(set(range(self.width)) - set(self.kept))


def residual_branches(graph: Graph) -> dict[str, Branch]:
    """The residual branches of the graph's model, by the name of their last convolution, in the
    model's order."""
    dependencies = graph.dependencies
    names = dependencies._module2name
    branches = {}
    for group_id, group in graph.groups.items():
        for item in group:
            conv = item.dep.target.module
            if not (isinstance(conv, nn.Conv2d) and conv.groups == 1
                    and dependencies.is_out_channel_pruning_fn(item.dep.handler)):
                continue
            node = dependencies.module2node[conv]
            tail, norm = node, None
            if len(tail.outputs) == 1 and isinstance(tail.outputs[0].module, nn.modules.batchnorm._BatchNorm):
                tail = tail.outputs[0]
                norm = tail.module
            if len(tail.outputs) != 1 or not _is_addition(tail.outputs[0].module):
                continue
            others = [operand for operand in tail.outputs[0].inputs if operand is not tail]
            if any(_through_a_layer(operand, node.inputs) for operand in others):
                continue  # the skip path of a block whose branch starts at the same input
            branches[names[conv]] = Branch(names[conv], names[norm] if norm is not None else None, group_id)
    order = {name: index for index, (name, _) in enumerate(graph.model.named_modules())}
    return dict(sorted(branches.items(), key=lambda named: order[named[0]]))  # in the model's order


def _is_addition(module: nn.Module) -> bool:
    return isinstance(module, tp.ops._ElementWiseOp) and module._grad_fn.startswith("AddBackward")


def _through_a_layer(start, sources: Iterable) -> bool:
    """Whether ``start`` is computed from one of the ``sources`` nodes through a convolution or
    linear layer (walking the graph backwards)."""
    wanted = {id(source) for source in sources}
    seen, frontier = set(), [(start, False)]
    while frontier:
        node, passed = frontier.pop()
        if (id(node), passed) in seen:
            continue
        seen.add((id(node), passed))
        if passed and id(node) in wanted:
            return True
        passed = passed or isinstance(node.module, PRUNABLE_TYPES)
        frontier += [(source, passed) for source in node.inputs]
    return False


def prunable_units(graph: Graph, branches: dict[str, Branch]) -> dict[str, tp.Group]:
    """What a zero-padding cut scores and cuts: every group no branch adds into, and each branch
    alone, as a Torch-Pruning group of its convolution's output channels and its BatchNorm (so any
    criterion scores it as it scores a group), named by its convolution."""
    spanned = {branch.group for branch in branches.values()}
    units = {group_id: group for group_id, group in graph.groups.items() if group_id not in spanned}
    modules = dict(graph.model.named_modules())
    for name, branch in branches.items():
        conv = modules[branch.conv]
        own = {conv} | ({modules[branch.norm]} if branch.norm else set())
        with quiet_torch_pruning():
            coupled = graph.dependencies.get_pruning_group(conv, tp.prune_conv_out_channels,
                                                           list(range(conv.out_channels)))
        alone = tp.Group()
        alone._DG = graph.dependencies
        # The convolution's own item comes first: it is the root, its indices the group's.
        alone._group = [item for item in coupled if item.dep.target.module in own
                        and graph.dependencies.is_out_channel_pruning_fn(item.dep.handler)]
        units[name] = alone
    return units


def cut_zero_padded(graph: Graph, branches: dict[str, Branch],
                    drops: dict[str, list[int]]) -> tuple[nn.Module, list, list[Padding]]:
    """A copy of the graph's model with ``drops`` (by ``prunable_units`` name) removed: groups cut
    with Torch-Pruning, branches zero-padded. Returns the copy, the pruning history of the group
    cuts and the paddings, which together rebuild it."""
    model, history = cut(graph, {unit: drop for unit, drop in drops.items() if unit not in branches})
    modules = dict(model.named_modules())
    paddings = []
    for name, drop in drops.items():
        if name in branches:
            width, dropped = modules[name].out_channels, set(drop)
            kept = tuple(index for index in range(width) if index not in dropped)
            paddings.append(Padding(name, branches[name].norm, width, kept))
    pad(model, paddings)
    return model, history, paddings


def pad(model: nn.Module, paddings: Iterable[Padding]) -> nn.Module:
    """``model`` with each padding applied in place: the branch's convolution (and BatchNorm) cut
    to its kept channels, its last layer wrapped to scatter them back to the full width."""
    for padding in paddings:
        conv = model.get_submodule(padding.conv)
        removed = padding.removed()
        # Kept and removed make up the width exactly once: no index out of range or repeated.
        if conv.out_channels != padding.width or len(removed) + len(padding.kept) != padding.width \
                or not 0 < len(removed) < padding.width:
            raise ValueError(f"the padding of {padding.conv} does not fit: {len(padding.kept)} channels kept of "
                             f"{padding.width}, and the layer has {conv.out_channels}")
        tp.prune_conv_out_channels(conv, removed)
        last = padding.conv
        if padding.norm is not None:
            tp.prune_batchnorm_out_channels(model.get_submodule(padding.norm), removed)
            last = padding.norm
        parent, _, attribute = last.rpartition(".")
        owner = model.get_submodule(parent)
        setattr(owner, attribute, zero_padded(getattr(owner, attribute), padding.kept, padding.width))
    return model


def removed_channels(paddings: Iterable[Padding]) -> dict[str, list[int]]:
    """Per layer name, the output channels the paddings remove: what a masked model zeroes to
    compute what the zero-padded one does."""
    removed = {}
    for padding in paddings:
        for layer in (padding.conv, padding.norm):
            if layer is not None:
                removed[layer] = padding.removed()
    return removed

"""The masked contrast: the channels a pruning history removes, zeroed by masks instead.

``torch.nn.utils.prune`` keeps a layer at full size and multiplies its weight by a mask in a
forward pre-hook on every call: the way pruning is often done in PyTorch, and the reason its
gains vanish on the board. A masked model computes exactly what the pruned model computes before
fine-tuning (every removed channel's weight rows, bias and BatchNorm scale and shift are zeroed,
so the channel outputs zero and every consumer sees zero), so the two differ only in how they
run. ``masked_like`` checks that premise itself: a masked contrast with no masks on it measures the
unpruned model.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch_pruning as tp
from torch import nn
from torch.nn.utils import prune as torch_prune

#: Layers whose output channels a mask zeroes: their weight (rows), and bias when present.
MASKED_TYPES = (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)


def removed_channels(model: nn.Module, example_input: torch.Tensor, history: Sequence) -> dict[str, list[int]]:
    """Per layer name, the original indices of the output channels that replaying ``history``
    (Torch-Pruning's ``pruning_history()``: ``[root name, is output channels, indices]`` entries)
    removes. ``model`` is not changed: the history is replayed on a copy, tracking every layer's
    surviving channels through each cut."""
    replayed = copy.deepcopy(model)
    graph = tp.DependencyGraph().build_dependency(replayed, example_inputs=example_input)
    modules = dict(replayed.named_modules())
    alive: dict[str, list[int]] = {}  # layer -> original indices of its channels still present
    removed: dict[str, list[int]] = {}
    for root_name, is_out, idxs in history:
        root = modules[root_name]
        pruner = graph.get_pruner_of_module(root)
        handler = pruner.prune_out_channels if is_out else pruner.prune_in_channels
        group = graph.get_pruning_group(root, handler, list(idxs))
        for dep, layer_idxs in group:
            layer = dep.target.module
            if not (isinstance(layer, MASKED_TYPES) and graph.is_out_channel_pruning_fn(dep.handler)):
                continue
            name = graph._module2name[layer]
            survivors = alive.setdefault(name, list(range(_out_channels(layer))))
            for index in sorted(set(layer_idxs), reverse=True):
                removed.setdefault(name, []).append(survivors.pop(index))
        group.prune()
    return {name: sorted(indices) for name, indices in removed.items()}


def masked_like(model: nn.Module, example_input: torch.Tensor, history: Sequence) -> nn.Module:
    """A copy of ``model`` with the channels ``history`` removes zeroed by ``torch.nn.utils.prune``
    masks; ValueError when the history removes nothing a mask can hold."""
    return masked_channels(model, removed_channels(model, example_input, history))


def masked_channels(model: nn.Module, removed: dict[str, list[int]]) -> nn.Module:
    """A copy of ``model`` with the given output channels of each layer (by name) zeroed by
    ``torch.nn.utils.prune`` masks; ValueError when none of them is a channel a mask can hold."""
    masked = copy.deepcopy(model)
    modules = dict(masked.named_modules())
    for name, indices in removed.items():
        layer = modules[name]
        for tensor_name in ("weight", "bias"):
            tensor = getattr(layer, tensor_name, None)
            if isinstance(tensor, torch.Tensor):
                mask = torch.ones_like(tensor)
                mask[indices] = 0
                torch_prune.custom_from_mask(layer, tensor_name, mask)
    if masked_channel_count(masked) != sum(len(indices) for indices in removed.values()):
        raise ValueError("no channel to remove is one a mask can zero; the masked contrast would measure "
                         "the unpruned model")
    return masked


def masked_channel_count(model: nn.Module) -> int:
    """Output channels zeroed by an active ``torch.nn.utils.prune`` weight mask, over all layers:
    0 for a model without masks."""
    count = 0
    for module in model.modules():
        mask = getattr(module, "weight_mask", None)
        hooked = any(isinstance(hook, torch_prune.BasePruningMethod) and hook._tensor_name == "weight"
                     for hook in module._forward_pre_hooks.values())
        if hooked and isinstance(mask, torch.Tensor):
            rows = mask.reshape(mask.shape[0], -1)
            count += int((rows == 0).all(dim=1).sum())
    return count


def _out_channels(layer: nn.Module) -> int:
    if isinstance(layer, nn.Conv2d):
        return layer.out_channels
    if isinstance(layer, nn.Linear):
        return layer.out_features
    return layer.num_features

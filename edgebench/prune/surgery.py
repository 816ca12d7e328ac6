"""Channel surgery with Torch-Pruning's dependency graph (DepGraph).

A *group* is a set of coupled channels that must go together (a residual stage's channels
across every block that adds into it, a depthwise conv and its producer); it is named by its
root module, which is the same in every copy of a model. Pruning a group removes channels for
real: the result is a smaller, hook-free module, and Torch-Pruning's pruning history replays it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)


@dataclass(frozen=True)
class Graph:
    """A model's dependency graph and its prunable groups, by root module name."""

    model: nn.Module
    example_input: torch.Tensor
    dependencies: tp.DependencyGraph
    groups: dict[str, tp.Group]

    def width(self, group_id: str) -> int:
        return len(self.groups[group_id][0].idxs)


def build_graph(model: nn.Module, example_input: torch.Tensor) -> Graph:
    """The prunable groups of ``model``; the output layer is left alone (its width is the task's)."""
    dependencies = tp.DependencyGraph().build_dependency(model, example_inputs=example_input)
    groups = {}
    for group in dependencies.get_all_groups(ignored_layers=[output_layer(model)],
                                             root_module_types=list(PRUNABLE_TYPES)):
        root = group[0].dep.target.module
        groups[dependencies._module2name[root]] = group
    return Graph(model, example_input, dependencies, groups)


def output_layer(model: nn.Module) -> nn.Module | None:
    """The last convolution or linear layer in definition order: the classifier in torchvision's
    classification and segmentation models."""
    last = None
    for module in model.modules():
        if isinstance(module, PRUNABLE_TYPES):
            last = module
    return last


def aligned_width(width: int, round_to: int) -> int:
    """``width`` rounded down to a multiple of ``round_to``, never below ``round_to``."""
    return max(round_to, width // round_to * round_to)


def pruned_copy(graph: Graph, group_id: str, keep: int, scores: torch.Tensor) -> tuple[nn.Module, list]:
    """A copy of the graph's model with group ``group_id`` cut to its ``keep`` highest-scoring
    channels; returns the copy and the pruning-history entry that replays the cut."""
    model = copy.deepcopy(graph.model)
    copied = build_graph(model, graph.example_input)
    group = copied.groups[group_id]
    width = len(group[0].idxs)
    if not 0 < keep < width:
        raise ValueError(f"cannot keep {keep} of {width} channels of {group_id}")
    drop = torch.argsort(scores)[: width - keep].tolist()
    root = group[0].dep.target.module
    copied.dependencies.get_pruning_group(root, group[0].dep.handler, sorted(drop)).prune()
    entry = copied.dependencies.pruning_history()[-1]
    return model, [entry[0], bool(entry[1]), [int(i) for i in entry[2]]]


def layer_macs(model: nn.Module, example_input: torch.Tensor) -> dict[nn.Module, int]:
    """Multiply-accumulates of each convolution and linear layer in one forward pass: the count
    FLOPs-based pruners rank by (normalisation and activations are left out, as they usually are)."""
    counts: dict[nn.Module, int] = {}

    def count(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        else:
            per_output = module.in_features
        counts[module] = counts.get(module, 0) + output.numel() * per_output

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, PRUNABLE_TYPES)]
    try:
        with torch.inference_mode():
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    return counts


def macs_and_params(model: nn.Module, example_input: torch.Tensor) -> tuple[int, int]:
    return sum(layer_macs(model, example_input).values()), sum(p.numel() for p in model.parameters())


def macs_per_channel(graph: Graph, group_id: str, macs: dict[nn.Module, int]) -> float:
    """MACs one channel of the group costs: each coupled layer's MACs over its pruned dimension
    (MACs are linear in a group's width)."""
    total, seen = 0.0, set()
    for dep, _ in graph.groups[group_id]:
        layer = dep.target.module
        if layer in seen or layer not in macs:
            continue
        seen.add(layer)
        if dep.handler in (tp.prune_conv_out_channels, tp.prune_linear_out_channels):
            total += macs[layer] / (layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features)
        elif dep.handler in (tp.prune_conv_in_channels, tp.prune_linear_in_channels):
            # A depthwise conv is cut through its output channels only, so it is counted once.
            total += macs[layer] / (layer.in_channels if isinstance(layer, nn.Conv2d) else layer.in_features)
    return total

"""Channel surgery with Torch-Pruning's dependency graph (DepGraph).

A *group* is a set of coupled channels that must go together (a residual stage's channels
across every block that adds into it, a depthwise conv and its producer); it is named by its
root module, which is the same in every copy of a model (by the first layer that produces its
channels when the root is a depthwise conv, which only filters them). Pruning a group removes channels for
real: the result is a smaller, hook-free module, and Torch-Pruning's pruning history replays it.

Some layers keep their output channels (``kept_layers``); their input channels still follow
their producers (Torch-Pruning prunes an ignored layer's inputs):

- the graph's output layers: every convolution or linear layer from which no other one is
  reachable in the dependency graph. Their widths are what the task reads: a classifier's
  classes, a segmenter's classifier and auxiliary classifier, a detector's box and class convs.
- per-family rules (``FAMILY_RULES``, functions of the model): a torchvision single-stage
  detector (a ``.head`` of SSD, SSDLite, RetinaNet or FCOS kind, edgebench's built-in SSDs
  included) keeps every convolution and linear layer under its head, whose widths fix the
  anchors and classes; Torch-Pruning compares leaf modules, so the rule lists the head's leaves.
  Depthwise convolutions excepted (SSDLite's heads start with one): their channels are their
  input channels, which follow the backbone.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Optional

import torch
import torch_pruning as tp
from torch import nn

PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)


@dataclass(frozen=True)
class KeptLayers:
    """Layers whose output channels no group prunes, and why."""

    what: str  # "head", "output layers"
    why: str  # "family rule ssd", "the task reads their widths"
    layers: tuple[str, ...]

    def describe(self) -> str:
        shown = ", ".join(self.layers) if len(self.layers) <= 4 else f"{len(self.layers)} layers"
        return f"{self.what} ({shown}: {self.why})"


@dataclass(frozen=True)
class Graph:
    """A model's dependency graph and its prunable groups, by root module name."""

    model: nn.Module
    example_input: torch.Tensor
    dependencies: tp.DependencyGraph
    groups: dict[str, tp.Group]
    kept: tuple[KeptLayers, ...] = ()

    def width(self, group_id: str) -> int:
        return len(self.groups[group_id][0].idxs)

    def kept_reasons(self) -> dict[str, str]:
        """Each kept layer's name and the rule that keeps it."""
        return {name: f"{kept.what}: {kept.why}" for kept in self.kept for name in kept.layers}

    def kept_modules(self) -> list[nn.Module]:
        modules = dict(self.model.named_modules())
        return [modules[name] for kept in self.kept for name in kept.layers]

    def describe_kept(self) -> str:
        return "kept: " + "; ".join(kept.describe() for kept in self.kept) if self.kept else "kept: nothing"


#: A family rule: ``rule(model)`` -> (what, family, the leaf layers it keeps), or None when the
#: model is not of its family. Append a function to add a family.
FamilyRule = Callable[[nn.Module], Optional[tuple[str, str, list[nn.Module]]]]


def single_stage_detector_head(model: nn.Module) -> Optional[tuple[str, str, list[nn.Module]]]:
    """A torchvision SSD, SSDLite, RetinaNet or FCOS head (on the detector or its network part)."""
    from torchvision.models.detection.fcos import FCOSHead
    from torchvision.models.detection.retinanet import RetinaNetHead
    from torchvision.models.detection.ssd import SSDHead
    from torchvision.models.detection.ssdlite import SSDLiteHead

    families = ((SSDLiteHead, "ssdlite"), (SSDHead, "ssd"), (RetinaNetHead, "retinanet"), (FCOSHead, "fcos"))
    head = getattr(model, "head", None)
    family = next((name for kind, name in families if isinstance(head, kind)), None)
    if family is None:
        return None
    return "head", family, [module for module in head.modules()
                            if isinstance(module, PRUNABLE_TYPES) and not is_depthwise(module)]


def is_depthwise(layer: nn.Module) -> bool:
    return isinstance(layer, nn.Conv2d) and layer.groups > 1 and layer.groups == layer.in_channels == layer.out_channels


FAMILY_RULES: list[FamilyRule] = [single_stage_detector_head]


def build_graph(model: nn.Module, example_input: torch.Tensor) -> Graph:
    """The prunable groups of ``model``, without the layers ``kept_layers`` keeps."""
    with quiet_torch_pruning():
        dependencies = tp.DependencyGraph().build_dependency(model, example_inputs=example_input)
        graph = Graph(model, example_input, dependencies, {}, kept_layers(model, dependencies))
        for group in dependencies.get_all_groups(ignored_layers=graph.kept_modules(),
                                                 root_module_types=list(PRUNABLE_TYPES)):
            graph.groups[_group_name(dependencies, group)] = group
    return graph


def _group_name(dependencies: tp.DependencyGraph, group: tp.Group) -> str:
    producers = [dep.target.module for dep, _ in group if dependencies.is_out_channel_pruning_fn(dep.handler)
                 and isinstance(dep.target.module, PRUNABLE_TYPES) and not is_depthwise(dep.target.module)]
    return dependencies._module2name[producers[0] if producers else group[0].dep.target.module]


@contextlib.contextmanager
def quiet_torch_pruning() -> Iterator[None]:
    """Torch-Pruning's warnings silenced: its shape inference warns on every deep graph, and it
    warns on SSD's L2Norm scale, an unwrapped parameter it prunes along with conv4_3 (dimension
    0) all the same."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="torch_pruning")
        yield


def kept_layers(model: nn.Module, dependencies: tp.DependencyGraph) -> tuple[KeptLayers, ...]:
    """The family rules' layers, then the output layers no rule already keeps."""
    layer_names = {module: name for name, module in model.named_modules()}
    kept, claimed = [], set()
    for rule in FAMILY_RULES:
        found = rule(model)
        if found:
            what, family, layers = found
            kept.append(KeptLayers(what, f"family rule {family}", tuple(layer_names[layer] for layer in layers)))
            claimed.update(layers)
    outputs = [layer for layer in output_layers(dependencies) if layer not in claimed]
    if outputs:
        kept.append(KeptLayers("output layers", "the task reads their widths",
                               tuple(layer_names[layer] for layer in outputs)))
    return tuple(kept)


def output_layers(dependencies: tp.DependencyGraph) -> list[nn.Module]:
    """Convolution and linear layers from which no other one is reachable, in graph order."""
    outputs = []
    for module, node in dependencies.module2node.items():
        if isinstance(module, PRUNABLE_TYPES) and not _reaches_a_layer(node):
            outputs.append(module)
    return outputs


def _reaches_a_layer(start) -> bool:
    seen, frontier = {id(start)}, list(start.outputs)
    while frontier:
        node = frontier.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node.module, PRUNABLE_TYPES):
            return True
        frontier += node.outputs
    return False


def aligned_width(width: int, round_to: int) -> int:
    """``width`` rounded down to a multiple of ``round_to``, never below ``round_to``."""
    return max(round_to, width // round_to * round_to)


def pruned_copy(graph: Graph, group_id: str, keep: int, scores: torch.Tensor) -> tuple[nn.Module, list]:
    """A copy of the graph's model with group ``group_id`` cut to its ``keep`` highest-scoring
    channels; returns the copy and the pruning-history entry that replays the cut."""
    width = graph.width(group_id)
    if not 0 < keep < width:
        raise ValueError(f"cannot keep {keep} of {width} channels of {group_id}")
    model, history = cut(graph, {group_id: torch.argsort(scores)[: width - keep].tolist()})
    return model, history[0]


def cut(graph: Graph, drops: dict[str, Iterable[int]]) -> tuple[nn.Module, list]:
    """A copy of the graph's model without the given channels (root indices) of each group;
    returns the copy and the pruning-history entries that replay the cuts, one per group."""
    model = copy.deepcopy(graph.model)
    copied = build_graph(model, graph.example_input)
    for group_id, drop in drops.items():
        group = copied.groups[group_id]
        drop = sorted(int(index) for index in drop)
        if not 0 < len(drop) < len(group[0].idxs):
            raise ValueError(f"cannot remove {len(drop)} of {len(group[0].idxs)} channels of {group_id}")
        # Groups own disjoint root channels, so one group's cut leaves another's indices valid.
        with quiet_torch_pruning():
            copied.dependencies.get_pruning_group(group[0].dep.target.module, group[0].dep.handler, drop).prune()
    history = [[str(name), bool(out), [int(i) for i in idxs]] for name, out, idxs in copied.dependencies.pruning_history()]
    return model, history


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

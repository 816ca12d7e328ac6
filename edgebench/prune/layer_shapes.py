"""The prunable layers of a model as ``--latency-model layers`` measures them: every call of a
convolution or linear layer that some group cuts, with its geometry, its input's shape (a forward
pass traced at batch 1) and how its widths follow the groups (``layer_table.Dim``), read from
the Torch-Pruning groups the pruner cuts; and the one-layer model measured at a pair of widths.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

from edgebench.prune.layer_table import Dim
from edgebench.prune.surgery import PRUNABLE_TYPES, is_depthwise


@dataclass(frozen=True)
class LayerCall:
    """One call of a layer: ``name`` (``#2`` on for a layer's later calls), ``kind`` (conv,
    depthwise, linear), the layer's settings, its input's shape at full width without the batch,
    and its dimensions: input and output, or the one width of a depthwise convolution."""

    name: str
    kind: str
    settings: tuple
    input_shape: tuple[int, ...]
    dims: tuple[Dim, ...]

    def key(self, widths: tuple[int, ...]) -> tuple:
        """What one-layer model measures it at ``widths``: equal keys, one measurement."""
        return (self.kind, self.settings, self._shape(widths)[1:] if self.kind != "linear"
                else self._shape(widths)[:-1], self._channels(widths))

    def module(self, widths: tuple[int, ...]) -> tuple[nn.Module, tuple[int, ...]]:
        """The one-layer model at ``widths`` (one per dimension) and its input's shape, without
        the batch."""
        cin, cout = self._channels(widths)
        if self.kind == "linear":
            (bias,) = self.settings
            return nn.Linear(cin, cout, bias=bias).eval(), self._shape(widths)
        kernel, stride, padding, dilation, groups, bias, padding_mode = self.settings
        layer = nn.Conv2d(cin, cout, kernel, stride, padding, dilation, cin if self.kind == "depthwise" else groups,
                          bias, padding_mode)
        return layer.eval(), self._shape(widths)

    def _channels(self, widths: tuple[int, ...]) -> tuple[int, int]:
        if self.kind == "depthwise":
            return widths[0], widths[0]
        if self.kind == "conv":
            # A grouped convolution's widths are multiples of its groups: a width between two is
            # measured at the next one up.
            groups = self.settings[4]
            return tuple(math.ceil(width / groups) * groups for width in widths)  # type: ignore[return-value]
        return widths[0], widths[1]

    def _shape(self, widths: tuple[int, ...]) -> tuple[int, ...]:
        cin = self._channels(widths)[0]
        return (cin, *self.input_shape[1:]) if self.kind != "linear" else (*self.input_shape[:-1], cin)


def traced_layers(model: nn.Module, units: Mapping[str, tp.Group], dependencies: tp.DependencyGraph,
                  example_input: torch.Tensor) -> list[LayerCall]:
    """Every call of a convolution or linear layer of ``model`` that one of ``units`` (groups,
    or residual branches cut alone, by name) cuts, in the order the forward pass makes them."""
    parts = _parts(units, dependencies)
    names = {module: name for name, module in model.named_modules()}
    calls: list[LayerCall] = []
    counts: dict[nn.Module, int] = {}

    def record(module, inputs, output):
        counts[module] = counts.get(module, 0) + 1
        name = names[module] + (f"#{counts[module]}" if counts[module] > 1 else "")
        calls.append(_call(name, module, tuple(inputs[0].shape[1:]), parts))

    layers = {module for module, _ in parts}
    handles = [module.register_forward_hook(record) for module in layers]
    try:
        with torch.inference_mode():
            model(example_input[:1])
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _parts(units: Mapping[str, tp.Group], dependencies: tp.DependencyGraph
           ) -> dict[tuple[nn.Module, bool], list[tuple[str, int, int]]]:
    """Per (layer, whether its output side), the units that cut it: (unit, channels, unit width)."""
    parts: dict[tuple[nn.Module, bool], list[tuple[str, int, int]]] = {}
    for unit, group in units.items():
        width = len(group[0].idxs)
        for item in group:
            layer = item.dep.target.module
            if not isinstance(layer, PRUNABLE_TYPES):
                continue
            side = (layer, bool(dependencies.is_out_channel_pruning_fn(item.dep.handler)))
            if unit not in {name for name, _, _ in parts.get(side, [])}:
                parts.setdefault(side, []).append((unit, len(item.idxs), width))
    return parts


def _call(name: str, layer: nn.Module, input_shape: tuple[int, ...],
          parts: Mapping[tuple[nn.Module, bool], list[tuple[str, int, int]]]) -> LayerCall:
    if isinstance(layer, nn.Linear):
        dims = (Dim(layer.in_features, tuple(parts.get((layer, False), ()))),
                Dim(layer.out_features, tuple(parts.get((layer, True), ()))))
        return LayerCall(name, "linear", (layer.bias is not None,), input_shape, dims)
    settings = (tuple(layer.kernel_size), tuple(layer.stride),
                layer.padding if isinstance(layer.padding, str) else tuple(layer.padding),
                tuple(layer.dilation), layer.groups, layer.bias is not None, layer.padding_mode)
    if is_depthwise(layer):
        # Torch-Pruning cuts a depthwise convolution through its output channels, its input follows.
        return LayerCall(name, "depthwise", settings, input_shape, (Dim(layer.out_channels,
                                                                        tuple(parts.get((layer, True), ()))),))
    dims = (Dim(layer.in_channels, tuple(parts.get((layer, False), ()))),
            Dim(layer.out_channels, tuple(parts.get((layer, True), ()))))
    return LayerCall(name, "conv", settings, input_shape, dims)

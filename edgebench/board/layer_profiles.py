"""Per-layer profiles in one row shape for every backend, and which model module a layer is.

A row (``--profile-layers``, the record's ``layer_profile``), in the order the layers ran:

    layer       the backend's own name: TensorRT's engine layer, ONNX Runtime's node, eager's module
    module      the model's module it maps to (``layer1.0.conv1``; ``<root>`` for the top module's
                own operators), or None where no module is known
    type        TensorRT's layer type, ONNX Runtime's op type, eager's module class
    onnx_nodes  the ONNX nodes it came from (none in eager)
    calls       times it ran per inference (a module called twice, a node inside a loop)
    runs        profiled runs it ran in
    median_ms, mean_ms   its time per profiled run (all its calls), over the runs
    share       its median over the sum of all medians

Profiling slows every layer down and, on a GPU, serializes them: the times are for shares and
diffs between profiles, never latency. Board-side: Python 3.8, standard library only.
"""

from __future__ import annotations

import ast
import statistics

from edgebench.board import onnx_nodes

#: Profiled runs behind an eager or ONNX Runtime profile, made after the timed loop.
PROFILE_RUNS = 10
#: The module path of the model itself (``named_modules`` calls it "").
ROOT_MODULE = "<root>"
# The torch exporter (dynamo) writes each node's module scopes here: ['', 'layer1', 'layer1.0', op].
_NAME_SCOPES = "pkg.torch.onnx.name_scopes"
# How many operators back a fused node's own type is looked for (Conv, BatchNormalization, Add, Relu).
_FUSED_OPERATORS = 4


def profile_rows(runs, layers):
    """Rows from ``runs``, one dict per profiled run of layer -> (ms, calls) in the order the
    layers ran, and ``layers``, layer -> {"module", "type", "onnx_nodes"}."""
    times, calls = {}, {}
    for run in runs:
        for layer, (ms, count) in run.items():
            times.setdefault(layer, []).append(ms)
            calls.setdefault(layer, count)
    medians = dict((layer, statistics.median(values)) for layer, values in times.items())
    total = sum(medians.values())
    rows = []
    for layer, values in times.items():
        info = layers.get(layer, {})
        rows.append({
            "layer": layer,
            "module": info.get("module"),
            "type": info.get("type"),
            "onnx_nodes": list(info.get("onnx_nodes") or []),
            "calls": calls[layer],
            "runs": len(values),
            "median_ms": medians[layer],
            "mean_ms": statistics.mean(values),
            "share": medians[layer] / total if total > 0 else None,
        })
    return rows


def joined_module_path(scopes):
    """A module path from its scopes, each one either the full path (``layer1.0.bn1``: the dynamo
    exporter), an attribute name (``backbone``, ``features``, ``0``), or an attribute name that
    repeats its container's (``downsample``, ``downsample.0``: the TorchScript exporter's node
    names); ``ROOT_MODULE`` for none."""
    path = ""
    for scope in scopes:
        if not scope:
            continue
        last = path.rsplit(".", 1)[-1]
        if not path or scope.startswith(path + "."):
            path = scope
        elif scope.startswith(last + "."):
            path = path[:len(path) - len(last)] + scope
        else:
            path = path + "." + scope
    return path or ROOT_MODULE


class OnnxModuleMap:
    """Which ONNX node, and so which model module, a backend's layer name stands for.

    A node's module comes from the dynamo exporter's name scopes, else from a TorchScript-exporter
    name such as ``/layer1/layer1.0/conv1/Conv``. ONNX Runtime renames the nodes it rewrites
    after their output (``relu_1_nchwc``: a convolution with the ReLU after it fused in), so a
    name is looked up as a node, then its longest ``_``-prefix as a node or as the tensor a node
    produced; from there, given the layer's op type, the lookup walks back along first inputs to
    the node of that type (the convolution rather than the ReLU fused into it)."""

    def __init__(self, nodes):
        self.nodes = dict((node.name, node) for node in nodes)
        self.producers = dict((output, node.name) for node in nodes for output in node.outputs)

    @classmethod
    def from_file(cls, path):
        return cls(onnx_nodes.read_nodes(path))

    def node_of(self, name, op_type=None):
        """The ONNX node a backend's layer called ``name`` (of ``op_type``) stands for, or None."""
        parts = name.split("_")
        for end in range(len(parts), 0, -1):
            stem = "_".join(parts[:end])
            if stem in self.nodes or stem in self.producers:
                found = stem if stem in self.nodes else self.producers[stem]
                return self._walk_back_to(found, op_type) if op_type else found
        return None

    def module_of(self, name, op_type=None):
        """The module of the node ``name`` stands for; None when nothing maps."""
        node = self.node_of(name, op_type)
        return _node_module(self.nodes[node]) if node is not None else _name_module(name)

    def _walk_back_to(self, start, op_type):
        wanted = op_type[len("Fused"):] if op_type.startswith("Fused") else op_type  # FusedConv is a Conv
        node = self.nodes[start]
        for _ in range(_FUSED_OPERATORS):
            if node.op_type == wanted:
                return node.name
            producer = self.producers.get(node.inputs[0]) if node.inputs else None
            if producer is None:
                break
            node = self.nodes[producer]
        return start


def _node_module(node):
    scopes = node.metadata.get(_NAME_SCOPES)
    if scopes:
        try:
            parsed = ast.literal_eval(scopes)
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, list) and parsed:
            return joined_module_path(str(scope) for scope in parsed[:-1])  # the last is the operator
    return _name_module(node.name)


def _name_module(name):
    """``/layer1/layer1.0/conv1/Conv`` -> ``layer1.0.conv1``; None for names not in that form."""
    if not name.startswith("/"):
        return None
    return joined_module_path(name.split("/")[1:-1])

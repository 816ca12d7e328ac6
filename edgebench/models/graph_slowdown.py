"""A slowdown injected into an ONNX graph: the same model, the same outputs, more work.

Judging a regression detector needs a model that is slower by a known amount and otherwise the
same, measured the way every model is (worker, runner, ONNX Runtime), not samples multiplied
afterwards. ``slowed`` appends a side branch to the graph: ``convs`` 3x3 convolutions (each with
a ReLU) on a 1 x ``channels`` x ``size`` x ``size`` tensor, reduced to a scalar, multiplied by zero
and added to the first output. The branch starts from the first element of the first input, so
ONNX Runtime cannot fold it into a constant, and costs next to nothing besides its convolutions:
its time grows with ``convs`` from about zero. For finite inputs the outputs are exactly the base
model's (x + 0 = x).
"""

from __future__ import annotations

from pathlib import Path

from edgebench.errors import UsageError

PREFIX = "edgebench_slowdown"  # every added tensor and node name starts with it
DEFAULT_CHANNELS = 16
DEFAULT_SIZE = 16
_FLOAT_TYPES = ("FLOAT", "FLOAT16", "DOUBLE", "BFLOAT16")


def slowed(source: Path, out: Path, convs: int, channels: int = DEFAULT_CHANNELS, size: int = DEFAULT_SIZE) -> Path:
    """Write ``source`` with the side branch of ``convs`` convolutions to ``out`` (one file: external
    data is read and stored inline); ``out``. UsageError for a graph it cannot extend."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if convs < 1 or channels < 1 or size < 1:
        raise UsageError(f"a graph slowdown needs at least one convolution, channel and pixel "
                         f"(got convs={convs}, channels={channels}, size={size})")
    model = onnx.load(str(source))
    graph = model.graph
    initializers = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if not inputs or not graph.output:
        raise UsageError(f"{source.name}: a graph slowdown needs a graph input and an output")
    first_input, output = inputs[0], graph.output[0]
    output_type = TensorProto.DataType.Name(output.type.tensor_type.elem_type)
    if output_type not in _FLOAT_TYPES:
        raise UsageError(f"{source.name}: output {output.name!r} is {output_type}; a graph slowdown adds zero to "
                         "a floating-point output")
    base_output = _rename_output(graph, output.name, f"{PREFIX}/base_output")
    if base_output is None:
        raise UsageError(f"{source.name}: output {output.name!r} is not computed by a node")

    def name(part: str) -> str:
        return f"{PREFIX}/{part}"

    rng = np.random.default_rng(0)
    # He-scaled weights keep the activations' scale through the chain: no overflow, no inf * 0.
    scale = np.sqrt(2.0 / (channels * 9))
    weights = [numpy_helper.from_array((rng.standard_normal((channels, channels, 3, 3)) * scale).astype(np.float32),
                                       name(f"w{index}")) for index in range(convs)]
    seed = numpy_helper.from_array(rng.standard_normal((1, channels, size, size)).astype(np.float32), name("seed"))
    zero = numpy_helper.from_array(np.zeros((), np.float32), name("zero"))
    flat = numpy_helper.from_array(np.array([-1], np.int64), name("flat"))
    first = [numpy_helper.from_array(np.array([value], np.int64), name(f"first_{value}")) for value in (0, 1)]
    nodes = [helper.make_node("Reshape", [first_input.name, name("flat")], [name("input_flat")], name=name("flatten")),
             helper.make_node("Slice", [name("input_flat"), name("first_0"), name("first_1")], [name("input_first")],
                              name=name("first_element")),
             helper.make_node("Cast", [name("input_first")], [name("input_float")], to=TensorProto.FLOAT,
                              name=name("cast_input")),
             helper.make_node("Add", [name("seed"), name("input_float")], [name("x0")], name=name("start"))]
    for index in range(convs):
        nodes += [helper.make_node("Conv", [name(f"x{index}"), name(f"w{index}")], [name(f"c{index}")],
                                   pads=[1, 1, 1, 1], name=name(f"conv{index}")),
                  helper.make_node("Relu", [name(f"c{index}")], [name(f"x{index + 1}")], name=name(f"relu{index}"))]
    nodes += [helper.make_node("ReduceMean", [name(f"x{convs}")], [name("work")], keepdims=0, name=name("work")),
              helper.make_node("Mul", [name("work"), name("zero")], [name("nothing")], name=name("times_zero")),
              helper.make_node("Cast", [name("nothing")], [name("nothing_typed")],
                               to=output.type.tensor_type.elem_type, name=name("cast_output")),
              helper.make_node("Add", [base_output, name("nothing_typed")], [output.name], name=name("add"))]
    graph.node.extend(nodes)
    graph.initializer.extend([*weights, seed, zero, flat, *first])
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return out


def _rename_output(graph, output: str, renamed: str) -> str | None:
    """Make the node that computes ``output`` (and every node reading it) use ``renamed``;
    None when no node computes it (an input or initializer passed through)."""
    if not any(output in node.output for node in graph.node):
        return None
    for node in graph.node:
        for slots in (node.input, node.output):
            for index, tensor in enumerate(slots):
                if tensor == output:
                    slots[index] = renamed
    for value in graph.value_info:
        if value.name == output:
            value.name = renamed
    return renamed

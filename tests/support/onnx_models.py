"""Small ONNX graphs built with onnx.helper, for tests that need a real ONNX file fast."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def matmul_relu(path, input_name="input", batch_dim="batch", features=16, opset=17):
    """``relu(x @ W)`` with a dynamic batch dimension named ``batch_dim``."""
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((features, features)).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", [input_name, "W"], ["mm"]), helper.make_node("Relu", ["mm"], ["out"])],
        "matmul_relu",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch_dim, features])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch_dim, features])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def conv_stack(path, convs=1, channels=4, size=8):
    """``convs`` 3x3 convolutions with ReLU, channels in = out, on a 1x``channels``x``size``x``size``
    input: one more conv is the same model grown, as a nightly's file changes."""
    rng = np.random.default_rng(convs)
    nodes, weights, previous = [], [], "input"
    for index in range(convs):
        name = f"w{index}"
        weights.append(numpy_helper.from_array(
            rng.standard_normal((channels, channels, 3, 3)).astype(np.float32), name))
        nodes += [helper.make_node("Conv", [previous, name], [f"c{index}"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{index}"], [f"r{index}"])]
        previous = f"r{index}"
    shape = [1, channels, size, size]
    graph = helper.make_graph(nodes, "conv_stack", [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(previous, TensorProto.FLOAT, shape)], initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path

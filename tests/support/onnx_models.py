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

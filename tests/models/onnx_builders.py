"""ONNX files built with onnx.helper: odd tensor names, non-image inputs, external data."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Tensor names may hold any character; these are all legal ONNX names.
IDS = "input_ids:0"
MASK = "attention mask/bool"
FEATURES = "特徴 ü"


def token_model(path, opset=17):
    """Three inputs: int64 ids [batch, seq], a bool mask [batch, seq], float features [?, 4].

    The feature input's first dim is dynamic without a name (dim_param unset).
    """
    features = helper.make_tensor_value_info(FEATURES, TensorProto.FLOAT, [None, 4])
    graph = helper.make_graph(
        [
            helper.make_node("Cast", [MASK], ["mask_i64"], to=TensorProto.INT64),
            helper.make_node("Mul", [IDS, "mask_i64"], ["masked_ids"]),
            helper.make_node("ReduceSum", [FEATURES], ["feature_sum"], keepdims=1),
        ],
        "token_model",
        [
            helper.make_tensor_value_info(IDS, TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info(MASK, TensorProto.BOOL, ["batch", "seq"]),
            features,
        ],
        [
            helper.make_tensor_value_info("masked_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("feature_sum", TensorProto.FLOAT, [1, 1]),
        ],
    )
    _save(graph, path, opset)
    return path


def matmul_model(path, opset=17, external_data=None, batch_dim="N", extra_inputs=()):
    """``x @ W`` for x of shape [batch_dim, 8]; W stored in ``external_data`` if given."""
    weight = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch_dim, 8]), *extra_inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch_dim, 8])],
        initializer=[numpy_helper.from_array(weight, "W")],
    )
    model = _model(graph, opset)
    if external_data:
        onnx.save_model(model, str(path), save_as_external_data=True, location=external_data, size_threshold=0)
    else:
        onnx.save_model(model, str(path))
    return path


def _save(graph, path, opset):
    onnx.save_model(_model(graph, opset), str(path))


def _model(graph, opset):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    # IR 8 is what opset 17 shipped with; newer opsets need a newer IR.
    model.ir_version = 8 if opset <= 17 else 10
    return model

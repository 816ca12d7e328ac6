"""A slowdown injected into an ONNX graph: the same outputs, more work, and the work survives ONNX
Runtime's optimisations (benchmarks/regress_quality.py measures detection rates on such models)."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgebench.errors import UsageError
from edgebench.models.graph_slowdown import PREFIX, slowed
from onnx_builders import token_model
from onnx_models import conv_stack


def session(path, optimized=None):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    if optimized is not None:  # the graph as ONNX Runtime runs it, after its optimisations (the default level)
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def convolutions(path):
    return sum(node.op_type in ("Conv", "FusedConv") for node in onnx.load(str(path)).graph.node)


def test_the_slowed_model_computes_the_same_outputs_with_more_nodes(tmp_path):
    base = conv_stack(tmp_path / "base.onnx", convs=2, channels=8, size=16)
    grown = slowed(base, tmp_path / "slowed.onnx", convs=3)
    before, after = onnx.load(str(base)), onnx.load(str(grown))
    assert [v.name for v in after.graph.input] == [v.name for v in before.graph.input]
    assert [v.name for v in after.graph.output] == [v.name for v in before.graph.output]
    assert len(after.graph.node) > len(before.graph.node)
    assert convolutions(grown) == convolutions(base) + 3
    feeds = {"input": np.random.default_rng(1).standard_normal((1, 8, 16, 16)).astype(np.float32)}
    (expected,), (found,) = session(base).run(None, feeds), session(grown).run(None, feeds)
    assert np.array_equal(found, expected) and np.abs(expected).max() > 0


def test_onnx_runtime_keeps_the_side_branch_after_optimising(tmp_path):
    base = conv_stack(tmp_path / "base.onnx", convs=1, channels=8, size=16)
    grown = slowed(base, tmp_path / "slowed.onnx", convs=4)
    session(grown, optimized=tmp_path / "optimized.onnx")
    optimized = tmp_path / "optimized.onnx"
    # ONNX Runtime renames and fuses nodes (NCHWc convolutions): count them, and the multiplication by zero.
    assert convolutions(optimized) == convolutions(base) + 4
    assert f"{PREFIX}/times_zero" in [node.name for node in onnx.load(str(optimized)).graph.node]


def test_a_graph_it_cannot_extend_is_one_clear_error(tmp_path):
    with pytest.raises(UsageError, match="INT64; a graph slowdown adds zero to a floating-point output"):
        slowed(token_model(tmp_path / "tokens.onnx"), tmp_path / "out.onnx", convs=2)
    with pytest.raises(UsageError, match="at least one convolution"):
        slowed(conv_stack(tmp_path / "base.onnx"), tmp_path / "out.onnx", convs=0)

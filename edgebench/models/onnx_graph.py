"""What an ONNX file says about itself: graph inputs and external-data files."""

from __future__ import annotations

from pathlib import Path

from edgebench.errors import UsageError
from edgebench.models.input_specs import InputSpec
from edgebench.board.runners.base import first_line


def load_onnx_graph(path: Path):
    """The ``onnx.ModelProto`` without its external weights; UsageError if it is not ONNX."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf and onnx raise several types for a bad file
        raise UsageError(f"cannot read ONNX model {path}: {first_line(exc)}")
    # Protobuf reads an empty or unrelated file as an empty message rather than failing.
    if not model.HasField("graph") or not model.opset_import:
        raise UsageError(f"cannot read ONNX model {path}: not an ONNX model (no graph or opset)")
    return model


def graph_inputs(model, path: Path) -> tuple[InputSpec, ...]:
    """The graph's real inputs (old IR versions also list initializers as inputs)."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    return tuple(
        _input_spec(value, path) for value in model.graph.input if value.name not in initializers
    )


def external_data_files(model, path: Path) -> list[Path]:
    """Files holding the model's externally stored initializers, in a stable order."""
    import onnx

    locations = set()
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {entry.key: entry.value for entry in tensor.external_data}
            locations.add(entries["location"])
    files = [path.parent / location for location in sorted(locations)]
    for file in files:
        if not file.is_file():
            raise UsageError(f"ONNX model {path} needs its external data file {file}, which is missing")
    return files


def _input_spec(value, path: Path) -> InputSpec:
    import onnx

    if value.type.WhichOneof("value") != "tensor_type":
        raise UsageError(f"input {value.name!r} of {path.name} is not a tensor; edgebench feeds tensors only")
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        raise UsageError(f"input {value.name!r} of {path.name} has no shape in the graph")
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name
    except KeyError:
        raise UsageError(
            f"input {value.name!r} of {path.name} has unknown element type {tensor_type.elem_type}"
        )
    return InputSpec(value.name, tuple(_dim(dim) for dim in tensor_type.shape.dim), dtype)


def _dim(dim) -> int | str | None:
    """A fixed size, a symbolic name, or None for an unnamed dynamic dim."""
    which = dim.WhichOneof("value")
    if which == "dim_value":
        return dim.dim_value
    if which == "dim_param":
        return dim.dim_param
    return None

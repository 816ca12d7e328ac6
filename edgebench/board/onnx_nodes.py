"""The nodes of an ONNX file, read straight from its protobuf encoding.

The board has no ``onnx`` package, and ONNX Runtime does not expose a graph's nodes, so the
per-layer profile reads what it needs itself: each top-level node's name, op type, inputs, outputs and
metadata (the torch exporter's ``pkg.torch.onnx.name_scopes`` says which module made a node).
Initializers are skipped by their length, never decoded.
Board-side: Python 3.8, standard library only.
"""

from __future__ import annotations

# Field numbers from onnx.proto: ModelProto.graph, GraphProto.node, NodeProto.{input, output,
# name, op_type, metadata_props}, StringStringEntryProto.{key, value}.
_MODEL_GRAPH = 7
_GRAPH_NODE = 1
_NODE_INPUT, _NODE_OUTPUT, _NODE_NAME, _NODE_OP_TYPE, _NODE_METADATA = 1, 2, 3, 4, 9
_ENTRY_KEY, _ENTRY_VALUE = 1, 2

_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


class OnnxNode:
    def __init__(self, name, op_type, inputs, outputs, metadata):
        self.name = name
        self.op_type = op_type
        self.inputs = inputs
        self.outputs = outputs
        self.metadata = metadata


def read_nodes(path):
    """The main graph's nodes of the ONNX file at ``path``, in file order (``OnnxNode``s).
    ValueError for a file that is not an ONNX model's encoding."""
    with open(path, "rb") as file:
        model = memoryview(file.read())  # slices of a memoryview copy nothing
    graphs = [value for field, value in _fields(model) if field == _MODEL_GRAPH]
    if not graphs:
        raise ValueError("%s has no ONNX graph" % path)
    return [_node(value) for graph in graphs for field, value in _fields(graph) if field == _GRAPH_NODE]


def _node(encoded):
    name, op_type, inputs, outputs, metadata = "", "", [], [], {}
    for field, value in _fields(encoded):
        if field == _NODE_NAME:
            name = _text(value)
        elif field == _NODE_OP_TYPE:
            op_type = _text(value)
        elif field == _NODE_INPUT:
            inputs.append(_text(value))
        elif field == _NODE_OUTPUT:
            outputs.append(_text(value))
        elif field == _NODE_METADATA:
            entry = dict((key, _text(text)) for key, text in _fields(value))
            metadata[entry.get(_ENTRY_KEY, "")] = entry.get(_ENTRY_VALUE, "")
    return OnnxNode(name, op_type, inputs, outputs, metadata)


def _fields(buffer):
    """(field number, value) per field of one message: an int for varints, a memoryview for
    length-delimited fields; fixed-width fields are skipped."""
    position, end = 0, len(buffer)
    while position < end:
        key, position = _varint(buffer, position)
        field, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            value, position = _varint(buffer, position)
            yield field, value
        elif wire_type == _LENGTH_DELIMITED:
            length, position = _varint(buffer, position)
            if position + length > end:
                raise ValueError("truncated protobuf field %d" % field)
            yield field, buffer[position:position + length]
            position += length
        elif wire_type == _FIXED64:
            position += 8
        elif wire_type == _FIXED32:
            position += 4
        else:
            raise ValueError("not an ONNX model: protobuf wire type %d" % wire_type)


def _varint(buffer, position):
    result, shift = 0, 0
    while True:
        if position >= len(buffer):
            raise ValueError("truncated protobuf varint")
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7


def _text(value):
    return bytes(value).decode("utf-8", "replace")

"""Model specs: from what the user typed to a resolved model (inputs, fingerprint) and its ONNX.

Workstation side: torch, torchvision and onnx are imported only when a function needs them.
"""

from edgebench.models.artifacts import ExportError, default_cache_dir, onnx_for, torchscript_for
from edgebench.models.input_specs import InputSpec, input_shape_bindings, parse_input_shape
from edgebench.models.resolve import ResolvedModel, resolve_model

__all__ = [
    "ExportError",
    "InputSpec",
    "ResolvedModel",
    "default_cache_dir",
    "input_shape_bindings",
    "onnx_for",
    "parse_input_shape",
    "resolve_model",
    "torchscript_for",
]

"""From what the user typed to a model we can measure: its inputs and content fingerprint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from edgebench.errors import UsageError
from edgebench.board.detector_parts import PartError, detector_image_size, is_detector, select_part
from edgebench.board.torch_models import ModelBuildError, build_module
from edgebench.models.fingerprint import files_fingerprint, module_fingerprint
from edgebench.models.input_specs import BATCH_DIM, InputSpec, apply_input_shapes, inputs_from_shapes
from edgebench.models.onnx_graph import external_data_files, graph_inputs, load_onnx_graph
from edgebench.models.spec import ParsedSpec, parse_spec, with_part
from edgebench.board.runners.base import first_line

# Used when torchvision's weights do not say what image size the model expects.
DEFAULT_IMAGE_SIZE = 224


@dataclass(frozen=True)
class ResolvedModel:
    spec: str  # what the user typed
    name: str  # display name: "torchvision:resnet18", "mypkg.models:tiny", "model.onnx"
    kind: str  # "torch" or "onnx"
    # build_module recipe, for kind "torch"; left out of hash() since dicts are unhashable.
    recipe: dict[str, Any] | None = field(hash=False)
    onnx_path: Path | None  # for kind "onnx"
    fingerprint: str  # "sha256:<hex>"
    inputs: tuple[InputSpec, ...]
    #: The model's own files, which the fingerprint hashes (an ONNX file and its external data, a
    #: saved module); none for a module built from code. The artifact store keeps them.
    files: tuple[Path, ...] = ()

    def input_shapes(self, batch: int) -> dict[str, list[int]]:
        return {spec.name: spec.concrete(batch) for spec in self.inputs}


def resolve_model(spec: str, input_shapes: Sequence[str] = ()) -> ResolvedModel:
    """Resolve a model spec; ``input_shapes`` are ``--input-shape`` texts. Raises UsageError."""
    parsed = parse_spec(spec)
    if parsed.onnx_path is not None:
        return _resolve_onnx(spec, parsed.name, parsed.onnx_path, input_shapes)
    return _resolve_torch(spec, parsed, input_shapes)


def _resolve_onnx(spec: str, name: str, path: Path, texts: Sequence[str]) -> ResolvedModel:
    graph = load_onnx_graph(path)
    inputs = apply_input_shapes(name, graph_inputs(graph, path), texts, check_rank=True)
    files = (path, *external_data_files(graph, path))
    return ResolvedModel(spec, name, "onnx", None, path, files_fingerprint(files), inputs, files)


def _resolve_torch(spec: str, parsed: ParsedSpec, texts: Sequence[str]) -> ResolvedModel:
    assert parsed.recipe is not None
    recipe_format = parsed.recipe["format"]
    if recipe_format in ("torchvision", "edgebench"):
        parsed, module, declared = _library_model(parsed)
        # Our default is a guess, so any rank may replace it (video models take 5-D input).
        inputs = apply_input_shapes(parsed.name, declared, texts, check_rank=False)
    elif recipe_format == "torch-export":
        module = _build(parsed)
        declared = _exported_inputs(module, parsed.name)
        inputs = apply_input_shapes(parsed.name, declared, texts, check_rank=True)
    else:
        # Ask for the missing shapes before a possibly slow load.
        inputs = inputs_from_shapes(parsed.name, texts)
        module = _build(parsed)
    recipe = parsed.recipe
    # A model file is fingerprinted by its bytes; a built module by what it computes with.
    files = (Path(recipe["path"]),) if "path" in recipe else ()
    fingerprint = files_fingerprint(files) if files else module_fingerprint(module)
    return ResolvedModel(spec, parsed.name, "torch", recipe, None, fingerprint, inputs, files)


def _build(parsed: ParsedSpec):
    assert parsed.recipe is not None
    try:
        return build_module(parsed.recipe)
    except ModelBuildError as exc:
        raise UsageError(str(exc))
    except Exception as exc:  # the user's code or file failed: wrong kwargs, a bug, a bad pickle
        raise UsageError(f"cannot build {parsed.name}: {type(exc).__name__}: {first_line(exc)}")


def _library_model(parsed: ParsedSpec) -> tuple[ParsedSpec, Any, tuple[InputSpec]]:
    """A torchvision or built-in model, its measured part settled (a detector's network unless the
    spec says ``#end_to_end``; the name says which) and its declared image input."""
    recipe = dict(parsed.recipe or {})
    part = recipe.pop("part", None)
    whole = _build(ParsedSpec(parsed.name, recipe))
    if is_detector(whole):
        part = part or "network"
        height, width = detector_image_size(whole)
    else:
        height, width = _image_size(recipe, whole)
    try:
        module = select_part(whole, part, parsed.name)
    except PartError as exc:
        raise UsageError(str(exc))
    if part:
        parsed = ParsedSpec(with_part(parsed.name, part), {**recipe, "part": part})
    return parsed, module, (InputSpec("input0", (BATCH_DIM, 3, height, width), "float32"),)


def _image_size(recipe: dict[str, Any], module) -> tuple[int, int]:
    """The image size torchvision's weights preset (or the built-in model) declares."""
    if recipe["format"] == "edgebench":
        return getattr(module, "default_input_size", (DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE))
    import torchvision

    transforms = torchvision.models.get_model_weights(recipe["name"]).DEFAULT.transforms()
    size = getattr(transforms, "crop_size", None) or getattr(transforms, "resize_size", None)
    # A single size means a square image.
    return tuple((list(size) * 2)[:2]) if size else (DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE)


def _exported_inputs(module, name: str) -> tuple[InputSpec, ...]:
    """A torch.export program's user inputs: the placeholders left once parameters are unlifted."""
    import torch

    specs = []
    for node in module.graph.nodes:
        if node.op != "placeholder":
            continue
        value = node.meta.get("val")
        if not isinstance(value, torch.Tensor):
            raise UsageError(f"input {node.name!r} of {name} is not a tensor; edgebench feeds tensors only")
        shape = tuple(dim if isinstance(dim, int) else str(dim) for dim in value.shape)
        specs.append(InputSpec(node.name, shape, str(value.dtype).removeprefix("torch.")))
    return tuple(specs)

"""ONNX for a resolved model: the file itself, or a torch export cached by content.

Exports are static (at the concrete batch and input shapes), checked against eager PyTorch on the
seeded inputs (``output_check``), and cached under
``cache_dir/onnx/<key>.onnx`` with a ``.json`` sidecar of metadata. The key covers the model
fingerprint, the inputs, the torch version and the exporter set-up, so any of those changing
means a fresh export. Files appear atomically: an interrupted export leaves no cached file.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import os
import re
import uuid
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any, Iterator

from edgebench.board.synthetic_inputs import make_inputs
from edgebench.board.torch_models import build_module
from edgebench.models.onnx_graph import graph_inputs, load_onnx_graph
from edgebench.models.output_check import compare_outputs, run_onnx
from edgebench.models.resolve import ResolvedModel
from edgebench.board.runners.base import first_line

# The legacy TorchScript exporter is the fallback for models torch.export cannot capture, and
# what a recipe with ``"exporter": "legacy"`` asks for (one-layer latency probes: the same node,
# in a hundredth of the time).
LEGACY_OPSET = 17
LEGACY = "legacy"
# Bump when the export settings change, so old cache entries stop matching.
EXPORT_SETTINGS_VERSION = 2
# How far ONNX Runtime's outputs may be from eager's (numpy's allclose), the pruner's defaults.
OUTPUT_RTOL = 1e-3
OUTPUT_ATOL = 1e-4

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


class ExportError(Exception):
    """The model could not be exported to ONNX (an error record, not a usage error)."""


def default_cache_dir() -> Path:
    """``$EDGEBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/edgebench``, else ``~/.cache/edgebench``."""
    if os.environ.get("EDGEBENCH_CACHE_DIR"):
        return Path(os.environ["EDGEBENCH_CACHE_DIR"])
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "edgebench"


def onnx_for(model: ResolvedModel, batch: int, cache_dir: Path | None = None) -> Path:
    """An ONNX file for ``model`` at ``batch``; exports torch models once per cache key."""
    if model.kind == "onnx":
        assert model.onnx_path is not None
        return model.onnx_path
    import torch

    inputs = [spec.as_dict(batch) for spec in model.inputs]
    key = _cache_key(model, inputs, torch.__version__)
    onnx_path = (cache_dir or default_cache_dir()) / "onnx" / f"{key[:24]}.onnx"
    metadata_path = onnx_path.with_suffix(".json")
    # The sidecar is written last, so its presence marks a finished export.
    if onnx_path.is_file() and metadata_path.is_file():
        return onnx_path
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    module, args = _module_and_args(model, inputs)
    with atomic_target(onnx_path) as temp_path:
        exporter, dynamo_error = _export(model, module, args, temp_path)
        _check_exported(model, temp_path)
        _check_outputs(model, temp_path, module, args)
    metadata = {
        "model": model.name,
        "spec": model.spec,
        "fingerprint": model.fingerprint,
        "batch": batch,
        "inputs": inputs,
        "torch": torch.__version__,
        "exporter": exporter,
        "dynamo_error": dynamo_error,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }
    with atomic_target(metadata_path) as temp_path:
        temp_path.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return onnx_path


def torchscript_for(model: ResolvedModel, batch: int, cache_dir: Path | None = None) -> Path:
    """A TorchScript file of a torch model traced at ``batch``, cached like the ONNX exports:
    what a board's older PyTorch can load (a pickled module does not travel across versions)."""
    import torch

    if model.kind != "torch":
        raise ExportError(f"{model.name} is not a PyTorch model")
    inputs = [spec.as_dict(batch) for spec in model.inputs]
    key = _cache_key(model, inputs, torch.__version__, artifact="torchscript")
    path = (cache_dir or default_cache_dir()) / "torchscript" / f"{key[:24]}.pt"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    module, args = _module_and_args(model, inputs)
    with _quiet(), atomic_target(path) as temp_path:
        try:
            torch.jit.save(torch.jit.trace(module, args, check_trace=False), str(temp_path))
        except Exception as exc:  # tracing fails on data-dependent control flow and odd outputs
            raise ExportError(f"cannot trace {model.name} to TorchScript: {_one_line(exc)}")
    return path


def forget_exports(model: ResolvedModel, batch: int, cache_dir: Path | None = None) -> None:
    """Remove the cached ONNX and TorchScript files of ``model`` at ``batch``: the pruner measures
    dozens of throwaway candidates, each as large as the model."""
    import torch

    if model.kind != "torch":
        return
    inputs = [spec.as_dict(batch) for spec in model.inputs]
    root = cache_dir or default_cache_dir()
    for artifact, suffixes in (("onnx", (".onnx", ".json")), ("torchscript", (".pt",))):
        stem = _cache_key(model, inputs, torch.__version__, artifact=artifact)[:24]
        for suffix in suffixes:
            (root / artifact / f"{stem}{suffix}").unlink(missing_ok=True)


def _cache_key(model: ResolvedModel, inputs: list[dict[str, Any]], torch_version: str,
               artifact: str = "onnx") -> str:
    key = {
        "artifact": artifact,
        "fingerprint": model.fingerprint,
        "inputs": inputs,
        "torch": torch_version,
        "exporter": [EXPORT_SETTINGS_VERSION, version("onnxscript"), LEGACY_OPSET],
    }
    if _legacy_only(model):
        key["exporter"].append(LEGACY)
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _legacy_only(model: ResolvedModel) -> bool:
    return (model.recipe or {}).get("exporter") == LEGACY


def _export(model: ResolvedModel, module: Any, args: tuple, path: Path) -> tuple[str, str | None]:
    """Export to ``path``; returns the exporter used and why dynamo failed, if it did."""
    import torch

    names = [spec.name for spec in model.inputs]
    with _quiet():
        if _legacy_only(model):
            dynamo_error = "not tried: the recipe asks for the legacy exporter"
        else:
            try:
                torch.onnx.export(
                    module, args, str(path), dynamo=True, external_data=False, input_names=names
                )
                return "dynamo", None
            except Exception as exc:  # torch.export fails in many ways on models it cannot capture
                dynamo_error = _one_line(exc)
        try:
            torch.onnx.export(
                module, args, str(path), dynamo=False, opset_version=LEGACY_OPSET, input_names=names
            )
        except Exception as exc:
            raise ExportError(
                f"cannot export {model.name} to ONNX: {dynamo_error}; legacy exporter: {_one_line(exc)}"
            )
    return f"legacy-torchscript-opset{LEGACY_OPSET}", dynamo_error


def _module_and_args(model: ResolvedModel, inputs: list[dict[str, Any]]) -> tuple[Any, tuple]:
    import torch

    assert model.recipe is not None
    try:
        module = build_module(model.recipe)
    except Exception as exc:  # it built at resolve time; the file or code changed since
        raise ExportError(f"cannot build {model.name} for export: {_one_line(exc)}")
    arrays = make_inputs(inputs)
    return module, tuple(torch.from_numpy(arrays[spec["name"]]) for spec in inputs)


def _check_exported(model: ResolvedModel, path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:  # ValidationError, or a parse error for a mangled file
        raise ExportError(f"the ONNX export of {model.name} is invalid: {_one_line(exc)}")
    exported = [(spec.name, len(spec.shape)) for spec in graph_inputs(load_onnx_graph(path), path)]
    expected = [(spec.name, len(spec.shape)) for spec in model.inputs]
    if exported != expected:
        raise ExportError(
            f"the ONNX export of {model.name} has inputs (name, rank) {exported}, expected {expected}"
        )


# A detector's whole call ends in score thresholds and NMS: where scores are near-equal (random
# weights), rounding differences change which boxes survive, so the outputs cannot match.
_END_TO_END_HINT = ("; a detector's end-to-end output passes score thresholds and NMS, where tiny numeric "
                    "differences change which boxes survive (untrained weights give near-equal scores): "
                    "measure its #network, or give it trained weights")


def _check_outputs(model: ResolvedModel, path: Path, module: Any, args: tuple) -> None:
    """ONNX Runtime must compute what eager PyTorch does on the seeded inputs, whatever structure
    the model returns (a tensor, a tuple, a dict such as segmenters' ``{"out": ...}``)."""
    import torch

    feeds = {spec.name: arg.numpy() for spec, arg in zip(model.inputs, args)}
    try:
        (onnx_outputs,) = run_onnx(path, [feeds])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/InvalidArgument types
        raise ExportError(f"ONNX Runtime cannot run the export of {model.name}: {_one_line(exc)}")
    with torch.no_grad():
        eager_output = module(*args)
    problem, _, _ = compare_outputs(onnx_outputs, eager_output, rtol=OUTPUT_RTOL, atol=OUTPUT_ATOL)
    if problem:
        why = _END_TO_END_HINT if (model.recipe or {}).get("part") == "end_to_end" else ""
        raise ExportError(f"the ONNX export of {model.name} does not match eager PyTorch: {problem}{why}")


@contextlib.contextmanager
def atomic_target(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target`` that replaces it only if the block completes."""
    # Same directory, so os.replace is a rename; the dot name never matches a cache entry.
    temp_path = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:12]}{target.suffix}")
    try:
        yield temp_path
        os.replace(temp_path, target)
    finally:
        temp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep exporter progress lines off stdout (``--json`` output goes there); no warnings."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _one_line(exc: BaseException) -> str:
    """The root cause in one line: the dynamo exporter wraps it in a long, coloured preamble."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return f"{type(exc).__name__}: {_ANSI_ESCAPE.sub('', first_line(exc))}"

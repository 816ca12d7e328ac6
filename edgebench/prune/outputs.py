"""What ``edgebench prune`` leaves in its output folder, and how the pruned model is read back.

- ``state_dict.pt``: the pruned weights (``torch.load(..., weights_only=True)`` reads them).
- ``pruning.json``: the unpruned model's recipe, the example input's shape, Torch-Pruning's
  pruning history, the zero-padded residual branches (``zero_padded``, ``edgebench.prune.zero_pad``)
  and the measured part of a detector. The state dict does not fit the unpruned architecture;
  replaying the history, then the paddings, on the rebuilt model gives the architecture it fits
  (``load_pruned``: the whole model, a detector with its pre- and postprocessing).
- ``model.pt2``: a ``torch.export`` program, for ``edgebench run --model DIR/model.pt2``; of a
  detector, the part that was measured (its network unless the spec said ``#end_to_end``).
- ``model.onnx``: edgebench's own ONNX export of ``model.pt2`` (the exporter and cache
  ``edgebench run`` uses), checked in ONNX Runtime against eager PyTorch.
- ``report.json``: the loop's steps and verdicts.

Every file appears atomically. ``pruning.json`` follows the state dict it describes and comes
before ``model.pt2``, so a model torch.export cannot capture can still be loaded back.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
import torch_pruning as tp
from torch import nn

from edgebench.errors import UsageError
from edgebench.board.detector_parts import select_part
from edgebench.board.torch_models import build_module
from edgebench.models import ExportError, onnx_for, resolve_model
from edgebench.models.artifacts import atomic_target
from edgebench.models.output_check import compare_outputs, run_onnx
from edgebench.prune.surgery import quiet_torch_pruning
from edgebench.prune.zero_pad import Padding, pad
from edgebench.board.runners.base import first_line

FORMAT_VERSION = 1
STATE_DICT = "state_dict.pt"
PRUNING = "pruning.json"
PROGRAM = "model.pt2"
ONNX = "model.onnx"
REPORT = "report.json"
# The second input of the ONNX check: seeded, so a report can be reproduced.
RANDOM_INPUT_SEED = 0
# pruning.json's fields and their JSON types; format_version is checked on its own.
_FIELDS = {"model": str, "recipe": dict, "input_shape": list, "input_dtype": str, "history": list}


def save_pruned(out_dir: Path, model: nn.Module, recipe: dict, model_name: str, example_input: torch.Tensor,
                history: list, part: str | None = None, paddings: Sequence[Padding] = ()) -> None:
    """Write ``state_dict.pt``, ``model.pt2`` and ``pruning.json``. ``recipe`` builds the
    unpruned model; ``history`` is ``DependencyGraph.pruning_history()`` from that model to this one,
    and ``paddings`` the residual branches zero-padded after it;
    ``part`` is what of a detector was measured, and what ``model.pt2`` holds (``measured``).

    Raises ExportError (one line) when torch.export cannot capture the model; the state dict and
    pruning.json are written first, so ``load_pruned`` still works then."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_target(out_dir / STATE_DICT) as temp_path:
        torch.save(model.state_dict(), temp_path)
    record = {
        "format_version": FORMAT_VERSION,
        "model": model_name,
        "recipe": recipe,
        "input_shape": list(example_input.shape),
        "input_dtype": str(example_input.dtype).removeprefix("torch."),
        # Plain JSON: Torch-Pruning may hand out numpy or tensor indices.
        "history": [[str(name), bool(out_channels), [int(i) for i in idxs]] for name, out_channels, idxs in history],
        "zero_padded": [padding.as_dict() for padding in paddings],
        "part": part,
    }
    with atomic_target(out_dir / PRUNING) as temp_path:
        temp_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    try:
        program = _export_program(measured(model, part, model_name), example_input)
    except Exception as exc:  # torch.export fails in many ways on models it cannot capture
        # A model.pt2 left from an earlier run would not be this model.
        (out_dir / PROGRAM).unlink(missing_ok=True)
        raise ExportError(f"torch.export cannot capture the pruned {model_name}: {type(exc).__name__}: "
                          f"{first_line(exc)} ({STATE_DICT} and {PRUNING} are saved)")
    with atomic_target(out_dir / PROGRAM) as temp_path:
        torch.export.save(program, temp_path)


def measured(model: nn.Module, part: str | None, name: str) -> nn.Module:
    """What of ``model`` the worker measured: ``model`` itself, or a detector's part."""
    return select_part(model, part, name) if part else model


def load_pruned(out_dir: Path) -> nn.Module:
    """The whole pruned model, in eval mode: the recipe rebuilt, the history replayed, the weights
    loaded. UsageError naming the file when a file is missing or does not fit."""
    record_path, weights_path = out_dir / PRUNING, out_dir / STATE_DICT
    record = _read_record(record_path)
    if not weights_path.is_file():  # before the slow part: building and replaying
        raise UsageError(f"no {STATE_DICT} in {out_dir}")
    try:
        module = build_module(record["recipe"])
    except Exception as exc:  # the user's code, a missing package or file: anything may fail
        raise UsageError(f"cannot rebuild {record['model']} from {record_path}: {type(exc).__name__}: "
                         f"{first_line(exc)}")
    example = torch.zeros(record["input_shape"], dtype=getattr(torch, record["input_dtype"]))
    try:
        with quiet_torch_pruning():
            graph = tp.DependencyGraph().build_dependency(module, example_inputs=example)
            graph.load_pruning_history(record["history"])
        # Written by an edgebench from before zero-padding: none.
        pad(module, [Padding.from_dict(entry) for entry in record.get("zero_padded", [])])
    except Exception as exc:  # a layer the model does not have, an index out of range, a bad entry
        raise UsageError(f"cannot replay the pruning history of {record_path} on {record['model']}: "
                         f"{type(exc).__name__}: {first_line(exc)}")
    try:
        weights = torch.load(weights_path, map_location="cpu", weights_only=True)
        module.load_state_dict(weights)
    except Exception as exc:  # a truncated file, unsafe pickles, shapes that do not fit
        raise UsageError(f"cannot load {weights_path} into the model {record_path} describes: "
                         f"{type(exc).__name__}: {first_line(exc)}")
    return module.eval()


def export_checked_onnx(out_dir: Path, model: nn.Module, example_input: torch.Tensor, *, rtol: float = 1e-3,
                        atol: float = 1e-4) -> dict[str, Any]:
    """Export ``out_dir/model.pt2`` to ONNX the way ``edgebench run`` does, copy it to
    ``model.onnx`` and compare ONNX Runtime with eager ``model`` on the example input and a seeded
    random one. Failures are reported, not raised: ``ok`` is false and ``error`` says why.

    ``ok`` means every output element satisfies ``|onnx - eager| <= atol + rtol * |eager|``
    (numpy's allclose); ``max_rel_diff`` is taken over elements with ``|eager| > atol``, since
    near zero only the absolute difference means anything."""
    result: dict[str, Any] = {"ok": False, "error": None, "max_abs_diff": None, "max_rel_diff": None,
                              "inputs_checked": 0, "onnx_input": None}
    try:
        resolved = resolve_model(str(out_dir / PROGRAM))
        if len(resolved.inputs) != 1:
            raise ExportError(f"{PROGRAM} takes {len(resolved.inputs)} inputs; the pruner feeds one")
        # resolve_model names the input after the program's placeholder: forward()'s argument name.
        result["onnx_input"] = resolved.inputs[0].name
        exported = onnx_for(resolved, batch=int(example_input.shape[0]))
        with atomic_target(out_dir / ONNX) as temp_path:
            shutil.copyfile(exported, temp_path)
    except (ExportError, UsageError) as exc:
        # A model.onnx left from an earlier run would not be this model.
        (out_dir / ONNX).unlink(missing_ok=True)
        return {**result, "error": str(exc)}
    inputs = {"example": example_input,
              "random": torch.randn(example_input.shape, dtype=example_input.dtype,
                                    generator=torch.Generator().manual_seed(RANDOM_INPUT_SEED))}
    try:
        runs = run_onnx(out_dir / ONNX, [{result["onnx_input"]: tensor.detach().cpu().numpy()}
                                          for tensor in inputs.values()])
        onnx_outputs = dict(zip(inputs, runs))
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/InvalidArgument types
        return {**result, "error": f"ONNX Runtime cannot run {ONNX}: {first_line(exc)}"}
    with _evaluating(model), torch.no_grad():
        eager_outputs = {label: model(tensor) for label, tensor in inputs.items()}
    problems, abs_diffs, rel_diffs = [], [], []
    for label in inputs:
        problem, abs_diff, rel_diff = compare_outputs(onnx_outputs[label], eager_outputs[label], rtol, atol)
        problems += [f"on the {label} input: {problem}"] if problem else []
        abs_diffs += [abs_diff] if abs_diff is not None else []
        rel_diffs += [rel_diff] if rel_diff is not None else []
    return {**result, "ok": not problems, "error": problems[0] if problems else None,
            "inputs_checked": len(inputs), "max_abs_diff": max(abs_diffs, default=None),
            "max_rel_diff": max(rel_diffs, default=None)}


def write_report_json(out_dir: Path, report: dict) -> Path:
    """``report.json``, indented; readers see the previous file or the whole new one."""
    path = out_dir / REPORT
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_target(path) as temp_path:
        temp_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return path


def _export_program(model: nn.Module, example_input: torch.Tensor) -> torch.export.ExportedProgram:
    """A program with a dynamic batch dim, so ``edgebench run --batch 1,8`` measures each batch.

    Traced at batch 2: torch.export fixes any dim whose example size is 1. A model that fixes its
    batch itself (a reshape to a constant) is exported static, at the example's batch."""
    pair = torch.cat([example_input[:1]] * 2)
    with _evaluating(model):
        # Tried in eager first: torch.export logs a whole traceback for a model that fails at batch 2.
        if _runs(model, pair):
            try:
                return torch.export.export(model, (pair,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
            except Exception:  # a violated batch constraint, or any capture failure: the static try says which
                pass
        return torch.export.export(model, (example_input,))


def _runs(model: nn.Module, example: torch.Tensor) -> bool:
    try:
        with torch.no_grad():
            model(example)
    except Exception:  # whatever the model raises: a shape mismatch, its own checks
        return False
    return True


def _read_record(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UsageError(f"no {path.name} in {path.parent}: not a folder edgebench prune wrote")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {first_line(exc)}")
    if not isinstance(record, dict):
        raise UsageError(f"{path} is not a JSON object")
    if record.get("format_version") != FORMAT_VERSION:
        raise UsageError(f"{path} has format_version {record.get('format_version')!r}; this edgebench reads "
                         f"{FORMAT_VERSION}")
    wrong = [key for key, kind in _FIELDS.items() if not isinstance(record.get(key), kind)]
    if wrong:
        raise UsageError(f"{path} lacks or mistypes {', '.join(wrong)}")
    if not isinstance(getattr(torch, record["input_dtype"], None), torch.dtype):
        raise UsageError(f"{path} has an unknown input_dtype {record['input_dtype']!r}")
    return record


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """``model`` in eval mode for the block (batch norm's running statistics), its mode restored after."""
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)

"""The model the pruner starts from, and what of it the worker measures.

The pruner prunes, fine-tunes and evaluates the whole model (a detector with its preprocessing
and postprocessing, as the task calls it), but a detector is measured as its network unless the
spec says ``#end_to_end`` (``edgebench.board.detector_parts``). So the whole model is built here,
and every file the worker loads is the whole model with the part to measure in its recipe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, Optional

import torch

from edgebench.board.detector_parts import is_detector
from edgebench.board.runners.base import first_line
from edgebench.board.torch_models import build_module
from edgebench.errors import UsageError
from edgebench.models import default_cache_dir, resolve_model
from edgebench.models.fingerprint import module_fingerprint
from edgebench.models.resolve import ResolvedModel
from edgebench.models.spec import parse_spec, with_part
from edgebench.prune.tasks import DEFAULT_UNTRAINED_BELOW


class Prunable(NamedTuple):
    resolved: ResolvedModel  # the whole model: its recipe rebuilds what the pruning history replays on
    part: Optional[str]  # what of it the worker measures, when the spec says ("network", "end_to_end")


def prunable_model(spec: str, task, command: str = "edgebench prune") -> Prunable:
    """The model spec resolved at the task's input shape, as the whole model; UsageError (saying
    ``command`` needs it) unless it is a trainable PyTorch module."""
    parsed = parse_spec(spec)
    if parsed.onnx_path is not None:
        raise UsageError(f"{command} needs a PyTorch model; {parsed.name} is ONNX")
    if parsed.recipe and parsed.recipe["format"] == "torch-export":
        raise UsageError(f"{command} needs a trainable nn.Module; {parsed.name} is a torch.export program "
                         "(give the .pt module or the callable that builds it)")
    resolved = resolve_model(spec, ["x".join(str(d) for d in task.example_input.shape[1:])])
    part = resolved.recipe.get("part")
    if part is None:
        return Prunable(resolved, None)
    recipe = {key: value for key, value in resolved.recipe.items() if key != "part"}
    whole = dataclasses.replace(resolved, name=resolved.name.removesuffix(f"#{part}"), recipe=recipe,
                                fingerprint=module_fingerprint(build_module(recipe)))
    return Prunable(whole, part)


def measured_part(module: torch.nn.Module, part: Optional[str]) -> Optional[str]:
    """The part of ``module`` the worker measures: ``part`` when the spec said, else a detector's
    network (its whole call when it has no network apart, as Faster R-CNN), else the module."""
    if part or not is_detector(module):
        return part
    return "network" if hasattr(module, "backbone") and hasattr(module, "head") else "end_to_end"


def saved_model(module: torch.nn.Module, path: Path, input_shape: str, name: str,
                part: Optional[str]) -> ResolvedModel:
    """``module`` saved whole at ``path`` and resolved like a model spec, shown as ``name``; with a
    ``part``, the worker builds and measures that part of it, and the name says which. UsageError
    when the module cannot be pickled (the worker loads a pickle)."""
    try:
        torch.save(module, path)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        path.unlink(missing_ok=True)
        raise UsageError(f"cannot save {name} for the worker: {type(exc).__name__}: {first_line(exc)} (the worker "
                         "loads a pickled module: define its classes at module level, not inside a function)")
    resolved = resolve_model(str(path), [input_shape])
    if part is None:
        return dataclasses.replace(resolved, name=name)
    # The file's fingerprint is the whole module's; the part's exports are cached apart.
    return dataclasses.replace(resolved, name=with_part(name, part), recipe={**resolved.recipe, "part": part},
                               fingerprint=f"{resolved.fingerprint}#{part}")


def trained_baseline(resolved: ResolvedModel, task, train_steps: int,
                     log: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    """The module, trained for ``train_steps`` on ``task`` if it scores as untrained; trained
    weights are cached by model fingerprint, task and steps. Returns the module and what was done."""
    module = build_module(resolved.recipe)
    score = task.evaluate(module)
    if score >= getattr(task, "untrained_below", DEFAULT_UNTRAINED_BELOW):
        return module, {"trained_here": False, "steps": 0}
    metric = getattr(task, "metric", "score")
    cached = default_cache_dir() / "prune" / "baselines" / f"{_key(resolved, task, train_steps)}.pt"
    if cached.is_file():
        module.load_state_dict(torch.load(cached, weights_only=True))
        log(f"baseline: untrained ({metric} {score:.1%}); trained weights from the cache {cached}")
        return module, {"trained_here": True, "steps": train_steps, "cached": str(cached)}
    log(f"baseline: untrained ({metric} {score:.1%}); training {train_steps} steps on {task.name}")
    started = time.perf_counter()
    task.finetune(module, train_steps)
    seconds = round(time.perf_counter() - started, 1)
    cached.parent.mkdir(parents=True, exist_ok=True)
    torch.save(module.state_dict(), cached)
    return module, {"trained_here": True, "steps": train_steps, "seconds": seconds}


def _key(resolved: ResolvedModel, task, train_steps: int) -> str:
    key = [resolved.fingerprint, task.name, train_steps, torch.__version__]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]

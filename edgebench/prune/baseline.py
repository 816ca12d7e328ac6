"""The model the pruner starts from: resolved at the task's input, trained when it is untrained."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

import torch

from edgebench.errors import UsageError
from edgebench.board.torch_models import build_module
from edgebench.models import default_cache_dir, resolve_model
from edgebench.models.resolve import ResolvedModel
from edgebench.models.spec import parse_spec

# A model scoring under this share of the task's accuracy scale is taken as untrained (random
# torchvision weights score about 1/classes) and is trained before pruning starts.
UNTRAINED_BELOW = 0.5


def prunable_model(spec: str, task) -> ResolvedModel:
    """The model spec resolved at the task's input shape; UsageError unless it is a trainable
    PyTorch module."""
    parsed = parse_spec(spec)
    if parsed.onnx_path is not None:
        raise UsageError(f"edgebench prune needs a PyTorch model; {parsed.name} is ONNX")
    if parsed.recipe and parsed.recipe["format"] == "torch-export":
        raise UsageError(f"edgebench prune needs a trainable nn.Module; {parsed.name} is a torch.export program "
                         "(give the .pt module or the callable that builds it)")
    return resolve_model(spec, ["x".join(str(d) for d in task.example_input.shape[1:])])


def trained_baseline(resolved: ResolvedModel, task, train_steps: int,
                     log: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    """The module, trained for ``train_steps`` on ``task`` if it scores as untrained; trained
    weights are cached by model fingerprint, task and steps. Returns the module and what was done."""
    module = build_module(resolved.recipe)
    accuracy = task.evaluate(module)
    if accuracy >= UNTRAINED_BELOW:
        return module, {"trained_here": False, "steps": 0}
    cached = default_cache_dir() / "prune" / "baselines" / f"{_key(resolved, task, train_steps)}.pt"
    if cached.is_file():
        module.load_state_dict(torch.load(cached, weights_only=True))
        log(f"baseline: untrained ({accuracy:.1%}); trained weights from the cache {cached}")
        return module, {"trained_here": True, "steps": train_steps, "cached": str(cached)}
    log(f"baseline: untrained ({accuracy:.1%}); training {train_steps} steps on {task.name}")
    started = time.perf_counter()
    task.finetune(module, train_steps)
    seconds = round(time.perf_counter() - started, 1)
    cached.parent.mkdir(parents=True, exist_ok=True)
    torch.save(module.state_dict(), cached)
    return module, {"trained_here": True, "steps": train_steps, "seconds": seconds}


def _key(resolved: ResolvedModel, task, train_steps: int) -> str:
    key = [resolved.fingerprint, task.name, train_steps, torch.__version__]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]

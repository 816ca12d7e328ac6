"""How far a decomposed layer's output is from the original's, on what the layer really sees:
its inputs inside the model, over a batch of the task's training images."""

from __future__ import annotations

import torch
from torch import nn


def layer_inputs(model: nn.Module, names: list[str], batch: torch.Tensor) -> dict[str, torch.Tensor]:
    """The input each named layer receives when ``model`` (in eval mode) runs ``batch``; a layer
    called more than once per forward keeps its first call's."""
    modules = dict(model.named_modules())
    captured: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(module, args):
            captured.setdefault(name, args[0].detach())
        return hook

    handles = [modules[name].register_forward_pre_hook(keep(name)) for name in names]
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(batch)
    finally:
        for handle in handles:
            handle.remove()
        model.train(training)
    return captured


def relative_error(original: nn.Module, replacement: nn.Module, inputs: torch.Tensor) -> float:
    """||replacement(x) - original(x)|| / ||original(x)|| over the whole batch (Frobenius norms)."""
    with torch.no_grad():
        expected = original(inputs).double()
        got = replacement(inputs).double()
    scale = float(expected.norm())
    return float((got - expected).norm()) / scale if scale > 0 else float((got - expected).norm())

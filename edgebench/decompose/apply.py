"""Decomposed layers put in place of the originals."""

from __future__ import annotations

import copy

from torch import nn


def replaced(model: nn.Module, replacements: dict[str, nn.Module]) -> nn.Module:
    """A copy of ``model`` with each named submodule replaced (``layer1.0.conv1`` -> its pair);
    ``model`` itself is left as it was."""
    result = copy.deepcopy(model)
    for name, module in replacements.items():
        result.set_submodule(name, module)
    return result

"""The decompositions ``edgebench decompose --method`` offers, and the layers each applies to."""

from __future__ import annotations

import fnmatch
from types import ModuleType
from typing import NamedTuple

from torch import nn

from edgebench.decompose import channel_svd, spatial_svd
from edgebench.errors import UsageError

# Each module has why_not(conv) -> reason or None, and factorize(conv) -> low_rank.LowRank.
METHODS: dict[str, ModuleType] = {"spatial": spatial_svd, "channel": channel_svd}


class Layers(NamedTuple):
    """The convolutions a method will try, by qualified name, and those it leaves, with why."""

    chosen: list[str]
    skipped: list[tuple[str, str]]


def method_named(name: str) -> ModuleType:
    if name not in METHODS:
        raise UsageError(f"--method must be one of {', '.join(METHODS)}, not {name!r}")
    return METHODS[name]


def decomposable_layers(model: nn.Module, method: str, patterns: tuple[str, ...] = ()) -> Layers:
    """Every ``nn.Conv2d`` of ``model`` whose name matches one of the shell-style ``patterns``
    (every one when none are given), split into those ``method`` applies to and the rest with a
    reason. UsageError when a pattern matches no convolution, or when nothing is left to try."""
    applies = method_named(method).why_not
    convs = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name, _ in convs):
            shown = ", ".join(name for name, _ in convs[:6]) + (", ..." if len(convs) > 6 else "")
            raise UsageError(f"--layers {pattern!r} matches no convolution of the model; its convolutions: "
                             f"{shown or 'none'}")
    chosen, skipped = [], []
    for name, conv in convs:
        if patterns and not any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            continue
        reason = applies(conv)
        if reason is None:
            chosen.append(name)
        else:
            skipped.append((name, reason))
    if not chosen:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in skipped[:3]) or "it has no nn.Conv2d"
        raise UsageError(f"no convolution to decompose with the {method} SVD ({reasons})")
    return Layers(chosen, skipped)

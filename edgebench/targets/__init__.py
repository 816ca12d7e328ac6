"""Targets: where a measurement runs. Only this machine's CPU exists so far."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str
    kind: str
    device: str
    mode: str = "default"


LOCAL = Target(name="local", kind="cpu", device="cpu")

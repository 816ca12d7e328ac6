"""What a sweep is configured with: settings, the target and its state, backend options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from edgebench.results.record import Settings
from edgebench.targets.definition import TargetDefinition


@dataclass(frozen=True)
class SweepConfig:
    settings: Settings
    target: TargetDefinition
    mode: str
    device: str
    threads: Optional[int] = None
    #: backend name -> {option: value}, already validated against the runner's option types.
    backend_options: dict[str, dict] = field(default_factory=dict)
    allow_hooks: bool = False
    #: ``{"source", "interval_ms"}`` when power is sampled alongside each window.
    power: Optional[dict] = None
    #: The idle baseline: ``{"source", "samples", "avg_power_w", "ram_used_mb"}``.
    idle: Optional[dict] = None
    #: What the records say about the board beyond the host: Jetson release, nvpmodel, clocks.
    board: dict = field(default_factory=dict)
    cooldown: bool = False
    #: GPU devices: whether each timed inference includes its input and output copies.
    include_copies: bool = False
    cuda_graphs: bool = False
    profile_layers: bool = False

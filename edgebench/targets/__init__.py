"""Targets: where a measurement runs, its devices, power modes and power sources.

``resolve_target("xavier" | "local" | "path/to/board.toml")`` gives a ``Target``: the
definition plus whether it can run here and, when not, why.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional

from edgebench.errors import UsageError
from edgebench.targets.boards import board_fits, board_mismatch, board_table, describe
from edgebench.targets.definition import DEFAULT_MODE, TargetDefinition, load_definition
from edgebench.targets.detect import LocalMachine, detect

LOCAL = "local"
_X86 = ("x86_64", "AMD64", "i686")


@dataclass(frozen=True)
class Target:
    definition: TargetDefinition
    available: bool
    reason: Optional[str]  # why it is not available here

    @property
    def name(self) -> str:
        return self.definition.name


def builtin_definitions() -> dict[str, TargetDefinition]:
    folder = resources.files("edgebench.targets") / "builtin"
    definitions = [load_definition(Path(str(entry))) for entry in folder.iterdir() if entry.name.endswith(".toml")]
    return {d.name: d for d in sorted(definitions, key=lambda d: d.name)}


def resolve_target(spec: str, machine: Optional[LocalMachine] = None) -> Target:
    """A built-in name, ``local`` (this machine, detected) or a target file path."""
    machine = machine or detect()
    builtins = builtin_definitions()
    if spec == LOCAL:
        return availability(local_definition(machine, builtins), machine)
    if spec in builtins:
        return availability(builtins[spec], machine)
    if spec.endswith(".toml") or Path(spec).exists():
        return availability(load_definition(Path(spec)), machine)
    raise UsageError(f"unknown target {spec!r}; targets: {', '.join([LOCAL, *builtins])}, or a .toml file")


def all_targets(machine: Optional[LocalMachine] = None) -> list[Target]:
    machine = machine or detect()
    return [availability(definition, machine) for definition in builtin_definitions().values()]


def local_definition(machine: LocalMachine, builtins: dict[str, TargetDefinition]) -> TargetDefinition:
    if machine.jetson is not None:
        for definition in builtins.values():
            if definition.kind == "jetson" and board_fits(definition, machine.jetson):
                return definition
        raise UsageError(f"this machine is {describe(machine.jetson)}, which no built-in target describes; "
                         f"describe it in a .toml file with {board_table(machine.jetson)} "
                         "(copy edgebench/targets/builtin/orin.toml)")
    return builtins["cuda-gpu" if machine.nvidia_gpu else "x86-cpu"]


def availability(definition: TargetDefinition, machine: LocalMachine) -> Target:
    reason = _unavailable_reason(definition, machine)
    return Target(definition, reason is None, reason)


def _unavailable_reason(definition: TargetDefinition, machine: LocalMachine) -> Optional[str]:
    if definition.remote is not None:
        return None  # on another machine: what it is shows when edgebench connects
    if definition.kind == "jetson":
        return board_mismatch(definition, machine.jetson, "this machine")
    if machine.jetson is not None:
        return f"this machine is {describe(machine.jetson)}; use its Jetson target"
    if definition.kind == "cuda" and not machine.nvidia_gpu:
        return "no NVIDIA GPU found (no /proc/driver/nvidia/gpus, no nvidia-smi)"
    if definition.kind == "cpu" and definition.name == "x86-cpu" and machine.machine not in _X86:
        return f"this CPU is {machine.machine}, not x86"
    return None


__all__ = ["DEFAULT_MODE", "LOCAL", "Target", "TargetDefinition", "all_targets", "builtin_definitions",
           "resolve_target"]

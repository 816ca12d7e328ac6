"""Jetson power modes (nvpmodel) and clock locking (jetson_clocks), always put back afterwards.

``power_mode(...)`` is a context manager: it reads the current mode, switches to the requested
one, optionally saves the clock state and locks clocks at maximum, and on the way out (normal
end, error or Ctrl-C) restores the clocks and the previous mode.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Optional

from edgebench.errors import UsageError
from edgebench.targets.definition import PowerMode, TargetDefinition
from edgebench.sweep.transport import CommandResult, Shell
from edgebench.targets.shell import LocalShell

_MODE_LINE = re.compile(r"NV Power Mode:\s*(\S+)")
_PERMISSION = re.compile(r"permission denied|operation not permitted|must be run as root|are you root", re.I)


class PowerModeError(UsageError):
    """A mode cannot be set as asked (reboot needed, no rights, unknown to the board)."""


@dataclass(frozen=True)
class ModeState:
    nvpmodel_id: int
    nvpmodel_name: str


@dataclass
class PreparedTarget:
    """What the records say about the board's state during the run."""

    mode: str
    nvpmodel: Optional[ModeState] = None
    previous: Optional[ModeState] = None
    clocks_locked: bool = False
    notes: list[str] = field(default_factory=list)


def query_mode(shell: Shell) -> ModeState:
    """``nvpmodel -q``: the mode name line, then the id (a warning line may come first)."""
    result = shell.run(["nvpmodel", "-q"])
    names = _MODE_LINE.findall(result.stdout)
    ids = [line.strip() for line in result.stdout.splitlines() if line.strip().isdigit()]
    if result.returncode != 0 or not names or not ids:
        raise PowerModeError(f"cannot read the power mode: nvpmodel -q said: {_last_line(result)}")
    return ModeState(int(ids[-1]), names[-1])


def set_mode(shell: Shell, mode: PowerMode) -> ModeState:
    """``nvpmodel -m ID`` with stdin closed, then confirm with ``nvpmodel -q``.

    A mode that needs a reboot makes nvpmodel ask on stdin; with stdin closed it changes
    nothing. That is reported, never confirmed."""
    result = shell.run(["nvpmodel", "-m", str(mode.nvpmodel_id)])
    if "reboot required" in result.output.lower():
        raise PowerModeError(
            f"mode {mode.name} (nvpmodel id {mode.nvpmodel_id}) needs a reboot to take effect; nothing was "
            "changed. Switch to it by hand (sudo nvpmodel -m {0}, confirm the reboot), then run with "
            "--mode {1}".format(mode.nvpmodel_id, mode.name))
    if _PERMISSION.search(result.output) or (result.returncode != 0 and os.geteuid() != 0):
        raise PowerModeError(
            "changing the power mode needs root: run edgebench as root or with sudo "
            f"(nvpmodel said: {_last_line(result)})")
    if result.returncode != 0:
        raise PowerModeError(f"nvpmodel -m {mode.nvpmodel_id} failed: {_last_line(result)}")
    state = query_mode(shell)
    if state.nvpmodel_id != mode.nvpmodel_id:
        raise PowerModeError(f"asked for mode {mode.name} (id {mode.nvpmodel_id}) but the board reports "
                             f"{state.nvpmodel_name} (id {state.nvpmodel_id})")
    return state


@contextlib.contextmanager
def power_mode(definition: TargetDefinition, mode_name: Optional[str], lock_clocks: bool,
               shell: Optional[Shell] = None) -> Iterator[PreparedTarget]:
    shell = shell or LocalShell()
    mode = definition.mode(mode_name) if mode_name else None
    if definition.kind != "jetson":
        if lock_clocks:
            raise UsageError(f"--lock-clocks needs a Jetson target (jetson_clocks); {definition.name} is {definition.kind}")
        yield PreparedTarget(mode=mode_name or "default")
        return
    previous = query_mode(shell)
    current = _mode_by_id(definition, previous.nvpmodel_id)
    prepared = PreparedTarget(mode=(mode or current).name if (mode or current) else f"id{previous.nvpmodel_id}",
                              nvpmodel=previous, previous=previous)
    clock_file = None
    try:
        if mode is not None and mode.nvpmodel_id != previous.nvpmodel_id:
            prepared.nvpmodel = set_mode(shell, mode)
        if lock_clocks:
            clock_file = _lock_clocks(shell)
            prepared.clocks_locked = True
        yield prepared
    finally:
        _restore(shell, definition, prepared, previous, clock_file)


def _lock_clocks(shell: Shell) -> str:
    clock_file = shell.temp_path("edgebench-clocks-")
    stored = shell.run(["jetson_clocks", "--store", clock_file])
    if stored.returncode != 0:
        shell.remove(clock_file)
        raise PowerModeError(f"jetson_clocks --store failed (it needs root): {_last_line(stored)}")
    locked = shell.run(["jetson_clocks"])
    if locked.returncode != 0:
        shell.run(["jetson_clocks", "--restore", clock_file])
        shell.remove(clock_file)
        raise PowerModeError(f"jetson_clocks failed (it needs root): {_last_line(locked)}")
    return clock_file


def _restore(shell: Shell, definition: TargetDefinition, prepared: PreparedTarget, previous: ModeState,
             clock_file: Optional[str]) -> None:
    """Clocks first (they were locked within the mode), then the mode. Failures are reported,
    never raised over the error that may be on its way out."""
    if clock_file is not None:
        result = shell.run(["jetson_clocks", "--restore", clock_file])
        shell.remove(clock_file)
        if result.returncode != 0:
            prepared.notes.append(f"could not restore clocks: {_last_line(result)}")
    if prepared.nvpmodel is not None and prepared.nvpmodel.nvpmodel_id != previous.nvpmodel_id:
        try:
            set_mode(shell, PowerMode(name=f"id{previous.nvpmodel_id}", nvpmodel_id=previous.nvpmodel_id))
        except UsageError as exc:
            prepared.notes.append(f"could not restore power mode {previous.nvpmodel_name}: {exc}")


def _mode_by_id(definition: TargetDefinition, nvpmodel_id: int) -> Optional[PowerMode]:
    return next((m for m in definition.modes if m.nvpmodel_id == nvpmodel_id), None)


def _last_line(result: CommandResult) -> str:
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {result.returncode}"

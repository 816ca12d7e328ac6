"""What a sweep needs from the way to the measured machine: a worker transport and a shell.

This machine (``sweep.local_worker.LocalWorker``, ``targets.shell.LocalShell``) and a board over
SSH (``remote.ssh_worker.SshWorker``, ``remote.ssh.SshShell``) implement these protocols; the
code above them is typed against the protocols and never knows where the board is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class TransportError(Exception):
    """The way to the worker broke (a lost SSH connection); the message says how."""


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class WorkerTransport(Protocol):
    """Runs one worker request (``edgebench.board.worker``) in a fresh process and always
    returns a result dict: a crash, a hang or a lost connection is ``status: "error"``."""

    #: Whether the worker runs on another machine (artifacts must travel, pickles cannot).
    remote: bool

    def run(self, request: dict, timeout_s: float) -> dict: ...

    def artifact(self, path: Path) -> str:
        """Where the worker finds the local file ``path`` (uploaded first if it must travel)."""
        ...

    @property
    def engine_cache_dir(self) -> str:
        """Where TensorRT engines are cached, on the worker's machine."""
        ...


class Shell(Protocol):
    """Runs the board's tools (nvpmodel, jetson_clocks) with stdin closed."""

    def run(self, argv: Sequence[str], timeout_s: float = 60.0) -> CommandResult: ...

    def temp_path(self, prefix: str) -> str:
        """A fresh file name on the board for a tool to write (jetson_clocks --store)."""
        ...

    def remove(self, path: str) -> None: ...

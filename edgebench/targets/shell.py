"""Runs the board's tools (nvpmodel, jetson_clocks): locally now, over SSH once remote targets exist."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

from edgebench.errors import UsageError


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class LocalShell:
    """Runs commands on this machine with stdin closed, so no tool can wait for an answer."""

    def run(self, argv: Sequence[str], timeout_s: float = 60.0) -> CommandResult:
        try:
            proc = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=timeout_s)
        except FileNotFoundError:
            raise UsageError(f"{argv[0]} not found on PATH (it ships with JetPack)") from None
        except subprocess.TimeoutExpired:
            raise UsageError(f"{' '.join(argv)} did not finish within {timeout_s:g} s") from None
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)

    def temp_path(self, prefix: str) -> str:
        """A fresh file name for a tool to write (jetson_clocks --store)."""
        handle, path = tempfile.mkstemp(prefix=prefix)
        os.close(handle)
        return path

    def remove(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

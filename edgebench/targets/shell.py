"""Runs this machine's board tools (nvpmodel, jetson_clocks); a board over SSH has ``remote.ssh.SshShell``."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence

from edgebench.errors import UsageError
from edgebench.sweep.transport import CommandResult


class LocalShell:
    """Runs commands on this machine with stdin closed, so no tool can wait for an answer (a ``Shell``)."""

    def run(self, argv: Sequence[str], timeout_s: float = 60.0) -> CommandResult:
        try:
            # Its own session: a Ctrl-C at the terminal goes to the whole foreground group and
            # must not kill nvpmodel or jetson_clocks halfway through putting the board back.
            proc = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=timeout_s, start_new_session=True)
        except FileNotFoundError:
            raise UsageError(f"{argv[0]} not found on PATH (it ships with JetPack)") from None
        except subprocess.TimeoutExpired:
            raise UsageError(f"{' '.join(argv)} did not finish within {timeout_s:g} s") from None
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)

    def temp_path(self, prefix: str) -> str:
        handle, path = tempfile.mkstemp(prefix=prefix)
        os.close(handle)
        return path

    def remove(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

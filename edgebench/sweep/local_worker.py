"""Runs one worker request in a fresh process and always returns a result.

A crash, an abort, an out-of-memory kill, a hang or garbage on stdout becomes a result with
``status: "error"`` and a readable message, so a sweep goes on. The transport is a local
subprocess here; a remote board only changes the command that starts the worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

WORKER_MODULE = "edgebench.board.worker"
STDERR_TAIL_LINES = 5

_SIGNAL_MEANINGS = {
    signal.SIGKILL: "killed by SIGKILL, most often the kernel's out-of-memory killer",
    signal.SIGSEGV: "crashed with a segmentation fault (SIGSEGV) in native code",
    signal.SIGABRT: "aborted (SIGABRT) by native code",
    signal.SIGBUS: "crashed with a bus error (SIGBUS)",
    signal.SIGFPE: "crashed with a floating-point exception (SIGFPE)",
}


class TransportError(Exception):
    """The way to the worker broke (a lost SSH connection); the message says how."""


class LocalWorker:
    """Starts ``python -m edgebench.board.worker`` on this machine."""

    #: Whether the worker runs on another machine (artifacts must travel, pickles cannot).
    remote = False

    #: Extra seconds the local side waits beyond the measurement's timeout (a remote transport's).
    transport_margin_s = 0.0

    def command(self, timeout_s: float) -> Sequence[str]:
        """The argv that starts a worker; a local one is bounded by ``run``'s own timeout."""
        return [sys.executable, "-m", WORKER_MODULE]

    def run(self, request: dict, timeout_s: float) -> dict:
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(
                self.command(timeout_s),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                # Its own process group, so a timeout kills whatever the backend spawned too.
                start_new_session=True,
            )
            try:
                stdout, _ = process.communicate(json.dumps(request).encode(),
                                                timeout=timeout_s + self.transport_margin_s)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                return _error(f"timed out after {timeout_s:g} s (the model hung or needs a larger --timeout)")
            except BaseException:  # Ctrl-C included: never leave a worker behind
                _kill_group(process)
                raise
            stderr.seek(0)
            stderr_tail = _tail(stderr.read().decode(errors="replace"))
        return self.interpret(process.returncode, stdout.decode(errors="replace"), stderr_tail, timeout_s)

    def interpret(self, returncode: int, stdout: str, stderr_tail: str, timeout_s: float) -> dict:
        return interpret(returncode, stdout, stderr_tail)

    def artifact(self, path: Path) -> str:
        """Where the worker finds ``path``: here, the path itself."""
        return str(path)

    @property
    def engine_cache_dir(self) -> str:
        """Where TensorRT engines are cached, on the worker's machine."""
        from edgebench.models import default_cache_dir

        return str(default_cache_dir() / "tensorrt")


def interpret(returncode: int, stdout: str, stderr_tail: str) -> dict:
    """The worker's result, or an error result explaining how the process ended."""
    if returncode < 0:
        sig = signal.Signals(-returncode)
        meaning = _SIGNAL_MEANINGS.get(sig, f"ended by signal {sig.name}")
        return _error(f"worker {meaning}" + _context(stderr_tail))
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if lines else None
    except ValueError:
        result = None
    if not isinstance(result, dict) or "status" not in result:
        return _error(f"worker exited with status {returncode} without a result" + _context(stderr_tail))
    return result


def _error(message: str) -> dict:
    return {"status": "error", "error": message, "warnings": []}


def _context(stderr_tail: str) -> str:
    last = stderr_tail.strip().splitlines()[-1:] if stderr_tail.strip() else []
    return f"; last output: {last[0].strip()}" if last else ""


def _tail(text: str) -> str:
    return "\n".join(text.splitlines()[-STDERR_TAIL_LINES:])


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()

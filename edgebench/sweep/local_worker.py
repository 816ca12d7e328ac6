"""Runs one worker request in a fresh process and always returns a result.

A crash, an abort, an out-of-memory kill, a hang or garbage on stdout becomes a result with
``status: "error"`` and a readable message, so a sweep goes on. ``run_worker_process`` is the
subprocess part both transports share: a local worker here, ``ssh`` for a board
(``remote/ssh_worker.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from edgebench.interrupts import sigint_deferred

WORKER_MODULE = "edgebench.board.worker"
STDERR_TAIL_LINES = 5

_SIGNAL_MEANINGS = {
    signal.SIGKILL: "killed by SIGKILL, most often the kernel's out-of-memory killer",
    signal.SIGSEGV: "crashed with a segmentation fault (SIGSEGV) in native code",
    signal.SIGABRT: "aborted (SIGABRT) by native code",
    signal.SIGBUS: "crashed with a bus error (SIGBUS)",
    signal.SIGFPE: "crashed with a floating-point exception (SIGFPE)",
}


class LocalWorker:
    """Starts ``python -m edgebench.board.worker`` on this machine (a ``WorkerTransport``)."""

    remote = False

    def run(self, request: dict, timeout_s: float) -> dict:
        finished = run_worker_process([sys.executable, "-m", WORKER_MODULE], request, timeout_s)
        if finished is None:
            return timed_out(timeout_s)
        return interpret(finished.returncode, finished.stdout, finished.stderr_tail)

    def artifact(self, path: Path) -> str:
        """Here, the path itself."""
        return str(path)

    @property
    def engine_cache_dir(self) -> str:
        from edgebench.models import default_cache_dir

        return str(default_cache_dir() / "tensorrt")


@dataclass(frozen=True)
class Finished:
    """How a worker process ended: its exit status (negative: the signal), stdout, stderr's tail."""

    returncode: int
    stdout: str
    stderr_tail: str


def run_worker_process(argv: Sequence[str], request: dict, wait_s: float) -> Optional[Finished]:
    """Start ``argv``, send ``request`` as JSON on its stdin and wait up to ``wait_s``; None when
    it was still running then (it is killed, with everything it spawned)."""
    with tempfile.TemporaryFile() as stderr:
        process = start_worker(argv, stderr)
        try:
            stdout, _ = process.communicate(json.dumps(request).encode(), timeout=wait_s)
        except subprocess.TimeoutExpired:
            kill_group(process)
            return None
        except BaseException:  # Ctrl-C included: never leave a worker behind
            kill_group(process)
            raise
        return Finished(process.returncode, stdout.decode(errors="replace"), tail_of(stderr))


def start_worker(argv: Sequence[str], stderr) -> subprocess.Popen:
    """``argv`` started with pipes for stdin and stdout, stderr to the file ``stderr``."""
    # Ctrl-C waits until the worker exists and can be killed: one taken inside Popen would
    # leave a started worker behind with nobody to end it.
    with sigint_deferred():
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            # Its own process group, so a timeout kills whatever the backend spawned too.
            start_new_session=True,
        )


def timed_out(timeout_s: float) -> dict:
    return error_result(f"timed out after {timeout_s:g} s (the model hung or needs a larger --timeout)")


def interpret(returncode: int, stdout: str, stderr_tail: str) -> dict:
    """The worker's result, or an error result explaining how the process ended."""
    if returncode < 0:
        sig = signal.Signals(-returncode)
        meaning = _SIGNAL_MEANINGS.get(sig, f"ended by signal {sig.name}")
        return error_result(f"worker {meaning}" + _context(stderr_tail))
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if lines else None
    except ValueError:
        result = None
    if not isinstance(result, dict) or "status" not in result:
        return error_result(f"worker exited with status {returncode} without a result" + _context(stderr_tail))
    return result


def error_result(message: str) -> dict:
    return {"status": "error", "error": message, "warnings": []}


def _context(stderr_tail: str) -> str:
    last = stderr_tail.strip().splitlines()[-1:] if stderr_tail.strip() else []
    return f"; last output: {last[0].strip()}" if last else ""


def tail_of(stderr) -> str:
    """The last lines the worker wrote to the file ``stderr``."""
    stderr.seek(0)
    text = stderr.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-STDERR_TAIL_LINES:])


def kill_group(process: subprocess.Popen) -> None:
    """Kill the worker and everything it spawned (its process group), and reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()

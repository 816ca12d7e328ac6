"""Two (or more) long-lived workers taking turns: a paired measurement whose sides cannot share
one process, because each needs its own runtime (another ONNX Runtime, torch or TensorRT).

Each side gets a worker of its own (``python -m edgebench.board.worker --serve`` on the side's
interpreter) that loads and warms its model once; then, round after round, the workers are asked
for one block each, in the same randomised, counterbalanced order as the one-process path
(``board.paired_blocks.block_orders``), so every side lives through the same minutes and only one
runs at a time. The results have the shape of the one-process path's entries, so the ratio and the
records are made the same way (``sweep.paired``). Every worker is pinned to the same CPUs
(``shared_cpus``): left to the scheduler, each settles on a core of its own and the ratio measures
the cores too (measured here, one thread: A/A ratios of fresh pairs of workers up to 1.063; pinned,
within 1.5%: ``benchmarks/pairing_blocks.py --turns``). Local workers only: the exchange needs a pipe
held open for the whole measurement, which the SSH transport does not offer.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Optional

from edgebench.board.paired_blocks import block_orders
from edgebench.errors import UsageError
from edgebench.sweep.local_worker import (WORKER_MODULE, error_result, interpret, kill_group, start_worker,
                                          tail_of, timed_out)

# How long a worker told to close may take to end before it is killed.
CLOSE_WAIT_S = 5.0


def shared_cpus(threads: Optional[int]) -> Optional[set[int]]:
    """The CPUs every worker taking turns is pinned to: the last ``threads`` of those this process
    may use (the first tends to take more of the machine's interrupts). None when the measurement
    uses them all (``threads`` unset or as many) or the system cannot pin (not Linux)."""
    if not threads or not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    return set(allowed[-threads:]) if threads < len(allowed) else None


class TurnWorker:
    """One long-lived worker process on ``python`` (pinned to ``cpus`` when given), asked one
    request at a time; always killed (with everything it spawned) on leaving the ``with`` block,
    Ctrl-C included."""

    def __init__(self, python: str, cpus: Optional[set[int]] = None):
        self._stderr = tempfile.TemporaryFile()
        try:
            self.process: Optional[subprocess.Popen] = start_worker([python, "-m", WORKER_MODULE, "--serve"],
                                                                    self._stderr)
        except OSError as exc:
            self._stderr.close()
            raise UsageError(f"cannot start a worker with {python}: {exc.strerror or exc}") from None
        self._buffer = b""
        if cpus:  # before it loads anything: the runtime's threads inherit it
            try:
                os.sched_setaffinity(self.process.pid, cpus)
            except OSError as exc:  # it ended at once, or these CPUs are not ours: no worker left behind
                self.close(0.0)
                raise UsageError(f"cannot pin a worker to CPUs {sorted(cpus)}: {exc.strerror or exc}") from None

    def __enter__(self) -> TurnWorker:
        return self

    def __exit__(self, exc_type, *_) -> None:
        # Leaving on an exception (Ctrl-C) kills at once: a worker mid-load may take minutes to listen.
        self.close(CLOSE_WAIT_S if exc_type is None else 0.0)

    def ask(self, request: dict, timeout_s: float) -> dict:
        """The worker's reply to ``request``; an error result when it ended, hung or answered garbage
        (the worker is then gone)."""
        if self.process is None:
            return error_result("the worker has ended")
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:  # it ended: its exit status says how
            return self._ended()
        line = self._read_line(timeout_s)
        if line is None:
            self.close()
            return timed_out(timeout_s)
        if not line:
            return self._ended()
        try:
            result = json.loads(line)
        except ValueError:
            result = None
        if not isinstance(result, dict) or "status" not in result:
            result = error_result(f"the worker answered {line[:80]!r}, not a result")
        if result["status"] != "ok":  # a failed reply ends the worker (board.worker.serve)
            self.close()
        return result

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Tell the worker to close its runner, give it ``wait_s`` to end, then make sure it is gone."""
        if self.process is None:
            return
        process, self.process = self.process, None
        try:
            with contextlib.suppress(OSError):
                process.stdin.write(b'{"task": "close"}\n')
            with contextlib.suppress(OSError):
                process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(wait_s)
        finally:  # a second Ctrl-C inside the wait must not leave it running
            kill_group(process)
            process.stdout.close()
            self._stderr.close()

    def _read_line(self, timeout_s: float) -> Optional[bytes]:
        """The next line on the worker's stdout; b"" at its end, None after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not select.select([fd], [], [], remaining)[0]:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b""
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _ended(self) -> dict:
        """How the worker ended, as the one-shot transport says it."""
        returncode = self.process.wait()
        result = interpret(returncode, "", tail_of(self._stderr))
        self.close()
        return result


def take_turns(loads: Mapping[int, dict], pythons: Sequence[str], rounds: int, block_s: float, seed: int,
               timeout_s: float, cpus: Optional[set[int]] = None) -> tuple[dict[int, dict], list[list[int]]]:
    """Each ``loads[i]`` (a ``load`` request) in a worker of its own on ``pythons[i]``, every
    worker pinned to ``cpus`` (``shared_cpus``), then ``rounds`` rounds of one block each, in
    ``block_orders(..., seed)``. Returns each side's entry (``status, error, warnings, ..., blocks,
    windows, pid``) by index, and the orders used.

    A side that fails to load is an error entry and the others go on, unless it is the first
    (the reference); a block that fails fails every side, as in the one-process path."""
    indices = sorted(loads)
    entries: dict[int, dict] = {}
    with contextlib.ExitStack() as closing:
        workers = {i: closing.enter_context(TurnWorker(pythons[i], cpus)) for i in indices}
        for i in indices:
            entries[i] = {**workers[i].ask(loads[i], timeout_s), "blocks": [], "windows": []}
            if entries[i]["status"] != "ok" and i == indices[0]:
                failed = {**entries[i], "error": f"the reference model: {entries[i]['error']}"}
                return {j: failed for j in indices}, []
        live = [i for i in indices if entries[i]["status"] == "ok"]
        orders = [[live[position] for position in order] for order in block_orders(len(live), rounds, seed)]
        for order in orders:
            for i in order:
                block = workers[i].ask({"task": "block", "block_s": block_s}, timeout_s)
                if block["status"] != "ok":
                    failed = {**block, "error": f"the worker of model {i + 1}: {block['error']}"}
                    return {**entries, **{j: failed for j in live}}, orders
                entries[i]["blocks"].append(block["samples_ms"])
                entries[i]["windows"].append(block["window"])
                entries[i]["memory_mb"] = block["memory_mb"]  # the peak so far of a process holding one model
    return entries, orders

"""A real ``edgebench`` subprocess that a test interrupts (SIGINT, as Ctrl-C sends, or SIGTERM) at a
known point: once it printed a given progress line, or once a file appeared, never after a fixed sleep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
# Generous: a loaded machine starts interpreters and imports torch slowly.
REACH_S = 300.0
# An interrupted edgebench exits within seconds; this only bounds a broken one.
EXIT_S = 60.0


class Interrupted:
    def __init__(self, args, cwd: Path, env: dict | None = None):
        # Wide lines: a progress line is never wrapped before the text a test waits for.
        path = os.pathsep.join(filter(None, [str(SUPPORT), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path, "COLUMNS": "250", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "edgebench", *args], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._stdout: list[str] = []
        self._readers = [threading.Thread(target=self._read_stderr, daemon=True),
                         threading.Thread(target=lambda: self._stdout.append(self.proc.stdout.read()), daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, text: str) -> None:
        """Until a stderr line contains ``text``; fails if edgebench ended first."""
        deadline = time.monotonic() + REACH_S
        with self._changed:
            while not any(text in line for line in self.lines):
                assert self.proc.poll() is None or self._readers[0].is_alive(), \
                    f"edgebench ended before printing {text!r}:\n{self.stderr}"
                assert time.monotonic() < deadline, f"no line with {text!r} in {REACH_S:g} s:\n{self.stderr}"
                self._changed.wait(timeout=1.0)

    def wait_for_file(self, path: Path) -> None:
        deadline = time.monotonic() + REACH_S
        while not path.exists():
            assert self.proc.poll() is None, f"edgebench ended before {path} appeared:\n{self.stderr}"
            assert time.monotonic() < deadline, f"{path} did not appear in {REACH_S:g} s:\n{self.stderr}"
            time.sleep(0.1)

    def interrupt(self, signum: int = signal.SIGINT) -> int:
        """SIGINT (Ctrl-C) or another signal, then its exit status (it must exit within EXIT_S)."""
        self.proc.send_signal(signum)
        return self.wait(EXIT_S, f" after {signal.Signals(signum).name}")

    def wait(self, seconds: float = REACH_S, what: str = "") -> int:
        """Its exit status once it ended and its output is read (fails after ``seconds``)."""
        try:
            returncode = self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"edgebench still running {seconds:g} s{what}:\n{self.stderr}") from None
        for reader in self._readers:
            reader.join(timeout=EXIT_S)
        return returncode

    @property
    def stderr(self) -> str:
        with self._changed:
            return "".join(self.lines)

    @property
    def stdout(self) -> str:
        return "".join(self._stdout)

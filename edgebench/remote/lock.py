"""One benchmark at a time per board: a lock held on the board for the whole run.

The lock is ``flock`` on a file in the board's workdir, held by a remote command that lives as
long as its stdin is open. A second workstation waits (saying so) up to a timeout instead of
interleaving its measurements. If the connection dies, the board releases the lock by itself.
"""

from __future__ import annotations

import getpass
import os
import select
import shlex
import socket
import subprocess
import time
from collections.abc import Callable
from datetime import datetime, timezone

from edgebench.errors import UsageError
from edgebench.remote.ssh import SshConnection, last_line

LOCKED = "edgebench-lock-held"
# How long to wait quietly before saying the board is busy.
QUIET_WAIT_S = 1.0


class BoardLock:
    def __init__(self, connection: SshConnection, workdir: str, timeout_s: float,
                 log: Callable[[str], None] = lambda message: None):
        self.connection = connection
        self.lock_file = f"{workdir}/board.lock"
        self.timeout_s = timeout_s
        self.log = log
        self._holder: subprocess.Popen | None = None

    def __enter__(self) -> BoardLock:
        owner = f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()} since " \
                f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}"
        lock = shlex.quote(self.lock_file)
        hold = f"echo {shlex.quote(owner)} > {lock}.owner; echo {LOCKED}; exec cat >/dev/null"
        command = f"exec flock -w {self.timeout_s:g} {lock} sh -c {shlex.quote(hold)}"
        self._holder = subprocess.Popen(self.connection.argv(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        if not self._wait_for_lock(QUIET_WAIT_S):
            self.log(f"board {self.connection.host} is busy: {self._current_owner()}; waiting up to "
                     f"{self.timeout_s:g} s for it")
            if not self._wait_for_lock(self.timeout_s + 30):
                self._holder.kill()
                stderr = self._holder.communicate()[1].decode(errors="replace")
                raise UsageError(f"board {self.connection.host} stayed busy for {self.timeout_s:g} s "
                                 f"({self._current_owner()}){'; ' + last_line(stderr) if last_line(stderr) else ''}")
        return self

    def __exit__(self, *exc_info) -> None:
        if self._holder is not None and self._holder.poll() is None:
            self._holder.stdin.close()
            try:
                self._holder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._holder.kill()

    def _wait_for_lock(self, seconds: float) -> bool:
        """True once the remote side says it holds the lock; False on timeout or exit."""
        deadline = time.monotonic() + seconds
        stdout = self._holder.stdout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([stdout], [], [], max(0.0, min(0.5, deadline - time.monotonic())))
            if ready:
                line = stdout.readline().decode(errors="replace").strip()
                if line == LOCKED:
                    return True
                if not line and self._holder.poll() is not None:
                    return False
        return False

    def _current_owner(self) -> str:
        result = self.connection.run(f"cat {shlex.quote(self.lock_file + '.owner')} 2>/dev/null")
        owner = result.stdout.strip()
        return f"locked by {owner}" if owner else "locked by another run"

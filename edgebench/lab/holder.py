"""Who holds a place: the edgebench process written into the place's comment, so that a janitor
can tell a holder that still runs from one that was killed.

labgrid's lock owner is ``host/user``, not a process, and a lock survives its process: the
comment adds the pid and the time the place was taken, e.g.
``edgebench pid=4242 host=ci-7 user=ci since=2026-05-01T08:00:00Z``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

_COMMENT = re.compile(r"^edgebench pid=(?P<pid>\d+) host=(?P<host>\S+) user=(?P<user>\S+) since=(?P<since>\S+)$")
# A pid whose process started later than this after the place was taken is another process.
_START_SLACK_S = 2.0


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    user: str
    #: When the place was taken (UTC).
    since: datetime

    @classmethod
    def this_process(cls, identity: str) -> Holder:
        """This process, for labgrid's ``host/user`` identity."""
        host, _, user = identity.partition("/")
        return cls(os.getpid(), host, user, datetime.now(timezone.utc).replace(microsecond=0))

    @classmethod
    def from_comment(cls, comment: str) -> Optional[Holder]:
        """The holder a place's comment names; None when edgebench did not write it."""
        match = _COMMENT.match(comment.strip())
        if match is None:
            return None
        try:
            since = datetime.strptime(match["since"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            return None
        return cls(int(match["pid"]), match["host"], match["user"], since)

    @property
    def comment(self) -> str:
        return f"edgebench pid={self.pid} host={self.host} user={self.user} since={self.since:%Y-%m-%dT%H:%M:%SZ}"

    @property
    def identity(self) -> str:
        """The labgrid lock owner this holder acquired as."""
        return f"{self.host}/{self.user}"

    def describe(self) -> str:
        return f"edgebench pid {self.pid} on {self.host} since {self.since:%Y-%m-%d %H:%M:%S} UTC"

    def gone(self) -> bool:
        """On this host: no process with the pid, a zombie, or a newer process that reuses it."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # another user's process: it exists
        started, state = _process_start(self.pid)
        if state == "Z":
            return True
        return started is not None and started > self.since.timestamp() + _START_SLACK_S


def _process_start(pid: int) -> tuple[Optional[float], Optional[str]]:
    """When ``pid`` started (seconds since the epoch) and its state letter, from Linux's /proc;
    (None, None) elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return None, None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state is field 3, starttime field 22
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK"), fields[0]


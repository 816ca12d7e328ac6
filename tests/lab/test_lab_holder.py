"""The holder a place's comment names, and whether that process is gone: judged by its pid on
this host, with a zombie or a later process reusing the pid counted as gone."""

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from edgebench.lab.holder import Holder

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def test_the_comment_names_the_holder_and_others_name_none():
    holder = Holder(4242, "ci-7", "ci", NOW)
    assert holder.comment == f"edgebench pid=4242 host=ci-7 user=ci since={NOW:%Y-%m-%dT%H:%M:%SZ}"
    assert Holder.from_comment(holder.comment) == holder
    assert holder.identity == "ci-7/ci"
    assert Holder.from_comment("flashing JetPack, ask Ana") is None
    assert Holder.from_comment("") is None


def test_this_process_runs_and_an_exited_one_is_gone():
    assert not Holder(os.getpid(), "h", "u", NOW).gone()
    exited = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert Holder(int(exited.stdout), "h", "u", NOW).gone()


def test_a_pid_reused_by_a_later_process_or_a_zombie_is_gone():
    later = subprocess.Popen(["sleep", "60"])
    try:
        # The place was taken an hour before this process started: the pid is someone else's now.
        assert Holder(later.pid, "h", "u", NOW - timedelta(hours=1)).gone()
        assert not Holder(later.pid, "h", "u", NOW + timedelta(hours=1)).gone()
    finally:
        later.kill()
        later.wait()
    zombie = subprocess.Popen(["true"])
    try:
        os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
        assert Holder(zombie.pid, "h", "u", NOW + timedelta(hours=1)).gone()
    finally:
        zombie.wait()

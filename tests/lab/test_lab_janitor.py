"""`edgebench lab janitor` and `edgebench lab places` against a real coordinator: only places
whose edgebench holder is gone are released; a person's lock, a running holder and a holder on
another host are left (the last unless that host is named gone). The end-to-end case, a run
killed with SIGKILL, is in test_lab_run.py."""

import getpass
import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from edgebench.lab.holder import Holder
from labgrid_lab import OFF_PLACE, PLACE, lock_place

HOST, USER = socket.gethostname(), getpass.getuser()
SINCE = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)


def exited_pid() -> int:
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(process.stdout)


def test_only_a_gone_edgebench_holder_is_released_and_dry_run_releases_nothing(lab, cli):
    lock_place(lab, OFF_PLACE, "flashing JetPack 6, ask Ana")  # a person, with labgrid-client
    dead = Holder(exited_pid(), HOST, USER, SINCE)
    lock_place(lab, PLACE, dead.comment)
    locked = lab.state()

    places = json.loads(cli("lab", "places", "--coordinator", lab.address, "--json").stdout)
    assert [(p["name"], p["tags"], p["acquired"], p["comment"]) for p in places] == [
        (PLACE, {"board": "xavier"}, f"{HOST}/{USER}", dead.comment),
        (OFF_PLACE, {"board": "off"}, f"{HOST}/{USER}", "flashing JetPack 6, ask Ana")]

    dry = cli("lab", "janitor", "--coordinator", lab.address, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        f"would release {PLACE}: edgebench pid {dead.pid} on {HOST} since {SINCE:%Y-%m-%d %H:%M:%S} UTC: "
        "that process is gone",
        f"left {OFF_PLACE}: locked by {HOST}/{USER}, not by edgebench"]
    assert lab.state() == locked

    done = cli("lab", "janitor", "--coordinator", lab.address)
    assert done.stdout.splitlines()[0].startswith(f"released {PLACE}: ")
    assert lab.state() == {"places": {PLACE: (None, ""), OFF_PLACE: locked["places"][OFF_PLACE]}, "reservations": []}


def test_a_running_holder_is_left(lab, held, cli):
    holder = Holder.from_comment(lab.state()["places"][PLACE][1])
    assert (holder.pid, holder.host) == (os.getpid(), HOST)
    result = cli("lab", "janitor", "--coordinator", lab.address)
    assert result.stdout.splitlines() == [f"left {PLACE}: {holder.describe()}: still running"]
    assert lab.state()["places"][PLACE][0] == f"{HOST}/{USER}"


def test_a_holder_on_another_host_is_left_unless_that_host_is_named_gone(lab, cli, monkeypatch):
    monkeypatch.setenv("LG_HOSTNAME", "ci-runner-9")  # labgrid's own override of the lock owner's host
    lock_place(lab, PLACE, Holder(4242, "ci-runner-9", USER, SINCE).comment)
    monkeypatch.delenv("LG_HOSTNAME")
    left = cli("lab", "janitor", "--coordinator", lab.address)
    assert left.stdout.splitlines() == [
        f"left {PLACE}: edgebench pid 4242 on ci-runner-9 since {SINCE:%Y-%m-%d %H:%M:%S} UTC: another host; run the "
        "janitor there, or --force-host ci-runner-9 if that host is gone"]
    forced = cli("lab", "janitor", "--coordinator", lab.address, "--force-host", "ci-runner-9", "--json")
    assert json.loads(forced.stdout) == [{"place": PLACE, "action": "release", "released": True,
                                          "reason": f"edgebench pid 4242 on ci-runner-9 since "
                                                    f"{SINCE:%Y-%m-%d %H:%M:%S} UTC: host ci-runner-9 named as gone"}]
    assert lab.state()["places"][PLACE] == (None, "")


def test_an_unreachable_coordinator_is_one_line(cli, lab):
    lab.stop()
    result = cli("lab", "janitor", "--coordinator", lab.address)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"edgebench: error: cannot reach the labgrid coordinator at {lab.address}: ")

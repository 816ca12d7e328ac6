"""`edgebench run` on a target whose board a labgrid place gives: a real coordinator and exporter
on loopback, the place's NetworkService a loopback sshd, this machine the board (an emulated
Jetson where modes matter, a plain CPU otherwise). However the run ends, the place is free
afterwards: not locked, no reservation, no comment."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from interrupting import Interrupted
from labgrid_lab import OFF_PLACE, PLACE, write_lab_target
from support_path import with_support

FAST = ["--min-time", "0.5", "--max-time", "1", "--warmup", "0.1", "--min-iterations", "5", "--threads", "1",
        "--processes", "1", "--device", "cpu"]
FREE = {"places": {PLACE: (None, ""), OFF_PLACE: (None, "")}, "reservations": []}


def start(target_file, cwd, *args):
    # The workstation has no emulated Jetson: the board has it.
    env = {key: value for key, value in os.environ.items() if key not in ("EDGEBENCH_SYSROOT", "LG_COORDINATOR")}
    env["PYTHONPATH"] = with_support()
    return subprocess.Popen([sys.executable, "-m", "edgebench", "run", "--target", str(target_file), *args],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stored(store):
    with sqlite3.connect(store) as db:
        runs = db.execute("SELECT status FROM runs").fetchall()
        records = db.execute("SELECT model, mode, status FROM results ORDER BY id").fetchall()
    return runs, records


def test_a_run_measures_on_the_board_behind_the_place_and_frees_the_place(lab, sshd, board, tmp_path):
    target = write_lab_target(tmp_path / "lab-xavier.toml", lab, sshd, tmp_path / "board-workdir", board=board)
    proc = start(target, tmp_path, "--mode", "maxn", "-m", "worker_models:tiny", "--input-shape", "3x8x8", "--json",
                 *FAST)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    [record] = json.loads(stdout)
    assert record["status"] == "ok", record["error"]
    assert (record["target"], record["mode"]) == ("lab-xavier", "maxn")
    assert record["env"]["lab"] == {"place": PLACE, "coordinator": lab.address, "tags": {"board": "xavier"}}
    assert record["env"]["jetson"]["serial"] == "1422919082000"  # the board's own, over SSH
    assert f"lab: place {PLACE} locked at {lab.address}, board " in stderr
    assert f"lab: place {PLACE} released" in stderr
    # Two coordinator sessions in one process (lease, release): gRPC's late events once hit a
    # closed event loop and printed a traceback (seen in benchmarks/lab.py's job logs).
    assert "Traceback" not in stderr and "Event loop is closed" not in stderr, stderr
    assert board.state()["history"] == [0, 2]  # MAXN for the run, MODE_15W again after
    assert lab.state() == FREE


def test_a_second_job_waits_for_the_place_and_runs_once_the_first_lets_go(lab, sshd, held, tmp_path):
    target = write_lab_target(tmp_path / "lab-cpu.toml", lab, sshd, tmp_path / "board-workdir")
    proc = Interrupted(["run", "--target", str(target), "-m", "worker_models:tiny", "--input-shape", "3x8x8", "--json",
                        *FAST], tmp_path)
    # The first job lets go only once the second has said it waits: start-up time cannot matter.
    proc.wait_for_line("waiting for a place with board=xavier: 0 reservation(s) ahead / 0 s")
    held.__exit__(None, None, None)
    assert proc.wait() == 0, proc.stderr
    [record] = json.loads(proc.stdout)
    assert record["status"] == "ok" and record["env"]["lab"]["place"] == PLACE
    assert lab.state() == FREE


def test_a_reservation_that_times_out_is_one_line_and_leaves_nothing_held(lab, sshd, held, tmp_path, cli):
    target = write_lab_target(tmp_path / "lab-cpu.toml", lab, sshd, tmp_path / "board-workdir", reserve_timeout_s=2)
    before = lab.state()
    result = cli("run", "--target", str(target), "-m", "worker_models:tiny", "--input-shape", "3x8x8", *FAST)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("edgebench: error")]
    assert errors == [f"edgebench: error: waited 2 s for a place with board=xavier at the labgrid coordinator "
                      f"{lab.address}; none came free (0 reservation(s) ahead): raise [lab] reserve_timeout_s or see "
                      "`edgebench lab places`"], result.stderr
    assert lab.state() == before  # the other job's lock and reservation, nothing of this run's
    assert not (tmp_path / "results" / "edgebench.db").exists()


def test_tags_no_place_has_are_one_line_at_once(lab, sshd, tmp_path, cli):
    target = write_lab_target(tmp_path / "lab-cpu.toml", lab, sshd, tmp_path / "board-workdir",
                              tags='{ board = "orin" }')
    result = cli("run", "--target", str(target), "-m", "worker_models:tiny", "--input-shape", "3x8x8", *FAST)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"edgebench: error: no place at the labgrid coordinator {lab.address} matches board=orin "
        f"(places: {PLACE} board=xavier; {OFF_PLACE} board=off)"]
    assert lab.state() == FREE


def test_an_error_once_the_place_is_locked_still_frees_it(lab, sshd, tmp_path, cli):
    # The place's board is off: the lease succeeds, the SSH connection is refused.
    target = write_lab_target(tmp_path / "lab-cpu.toml", lab, sshd, tmp_path / "board-workdir",
                              tags='{ board = "off" }')
    result = cli("run", "--target", str(target), "-m", "worker_models:tiny", "--input-shape", "3x8x8", *FAST)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("edgebench: error: 127.0.0.1: connection refused")
    assert f"lab: place {OFF_PLACE} locked" in result.stderr and f"lab: place {OFF_PLACE} released" in result.stderr
    assert lab.state() == FREE


def test_without_labgrid_a_lab_target_is_refused_in_one_line(lab, sshd, tmp_path, cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "labgrid.remote.client", None)  # import fails as if not installed
    target = write_lab_target(tmp_path / "lab-cpu.toml", lab, sshd, tmp_path / "board-workdir")
    result = cli("run", "--target", str(target), "-m", "worker_models:tiny", "--input-shape", "3x8x8", *FAST)
    assert result.returncode == 2, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("edgebench: error: lab targets and `edgebench lab` need labgrid 25 or newer (")
    assert line.endswith("): pip install 'edgebench[lab]'")


def two_stage_suite(tmp_path, target):
    """Stage 1 (maxn) measures and stores a record; stage 2 (30w-all) hangs in nvpmodel's switch,
    which notes it in a mark file: an interrupt lands while the place is held, after a record."""
    mark, release = tmp_path / "switching", tmp_path / "let-go"
    slow = tmp_path / "slow-bin"
    slow.mkdir()
    (slow / "nvpmodel").write_text(
        f'#!/bin/sh\nif [ "$1 $2" = "-m 3" ]; then\n  touch {mark}\n'
        f"  for i in $(seq 600); do [ -e {release} ] && break; sleep 0.1; done\nfi\n"
        f'exec {tmp_path / "board" / "bin" / "nvpmodel"} "$@"\n')
    (slow / "nvpmodel").chmod(0o755)
    (tmp_path / "suite.toml").write_text("\n".join([
        'name = "two-modes"', "[settings]", "min_time = 0.5", "max_time = 1.0", "processes = 1",
        *(line for mode in ("maxn", "30w-all") for line in (
            "[[matrix]]", 'models = ["worker_models:tiny"]', f'targets = ["{target}"]', f'modes = ["{mode}"]',
            'backends = ["eager"]', 'input_shapes = ["3x8x8"]')), ""]))
    return slow, mark, release


def start_two_stage_run(lab, sshd, board, tmp_path):
    """The two-stage suite running on the lab's emulated Xavier, as a subprocess to interrupt;
    with the mark its slow mode switch leaves and the file that lets the switch finish."""
    slow, mark, release = two_stage_suite(tmp_path, tmp_path / "lab-xavier.toml")
    write_lab_target(tmp_path / "lab-xavier.toml", lab, sshd, tmp_path / "board-workdir", board=board, bin_dir=slow)
    run = Interrupted(["run", "--suite", "suite.toml", "--device", "cpu", "--no-power", "--warmup", "0.1",
                       "--min-iterations", "5", "--threads", "1"], tmp_path)
    return run, mark, release


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_while_the_place_is_held_frees_it_and_keeps_the_records(lab, sshd, board, tmp_path, signum,
                                                                            status):
    run, mark, release = start_two_stage_run(lab, sshd, board, tmp_path)
    try:
        run.wait_for_file(mark)
        assert run.interrupt(signum) == status, run.stderr
    finally:
        release.touch()
    assert "interrupted: 1 record(s) kept" in run.stderr and "Traceback" not in run.stderr
    assert stored(tmp_path / "results" / "edgebench.db") == ([("interrupted",)], [("worker_models:tiny", "maxn", "ok")])
    assert run.stderr.count(f"lab: place {PLACE} released") == 2  # after each stage
    assert lab.state() == FREE


def test_a_job_killed_outright_leaves_the_place_to_the_janitor_and_its_records_stay(lab, sshd, board, tmp_path,
                                                                                     cli):
    run, mark, release = start_two_stage_run(lab, sshd, board, tmp_path)
    try:
        run.wait_for_file(mark)
        assert run.interrupt(signal.SIGKILL) == -signal.SIGKILL
    finally:
        release.touch()
    owner, comment = lab.state()["places"][PLACE]
    assert owner is not None and comment.startswith(f"edgebench pid={run.proc.pid} ")  # the leaked lock

    result = cli("lab", "janitor", "--coordinator", lab.address)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"released {PLACE}: edgebench pid {run.proc.pid} on ")
    assert result.stdout.rstrip().endswith(": that process is gone")
    assert lab.state() == FREE
    # What the killed job committed stays; its run row never learnt how the run ended.
    assert stored(tmp_path / "results" / "edgebench.db") == ([("running",)], [("worker_models:tiny", "maxn", "ok")])

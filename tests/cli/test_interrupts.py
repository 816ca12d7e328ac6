"""Ctrl-C at several points of a real `edgebench` run: it ends within seconds (exit 130), keeps
what it measured, marks the run interrupted and puts the board back in its mode. SIGTERM (a CI
cancel, `kill`) is taken the same way, with exit 143.

SIGINT goes to the subprocess once it printed a known progress line or once its worker is
inside the timed loop (a marker file), never after a fixed sleep, so a loaded machine only
makes the test slower. The Jetson is the emulated one of tests/support/fake_jetson.py.
"""

import json
import os
import signal
import sqlite3
import time

import pytest

from fake_jetson import make_emulated_jetson
from interrupting import Interrupted

FAST = ["--min-time", "0.2", "--max-time", "1", "--warmup", "0.05", "--min-iterations", "5", "--threads", "1",
        "--processes", "1"]


def stored(store):
    with sqlite3.connect(store) as db:
        runs = db.execute("SELECT status FROM runs").fetchall()
        records = db.execute("SELECT model, backend, mode, status FROM results ORDER BY id").fetchall()
    return runs, records


def test_during_a_measurement_the_worker_goes_and_the_records_before_it_stay(tmp_path):
    mark = tmp_path / "measuring"
    run = Interrupted(["run", "-m", "worker_models:tiny", "-m", "interrupt_models:marked_hang", "--input-shape",
                       "3x8x8", "-b", "eager", "--json", *FAST], tmp_path, env={"EDGEBENCH_TEST_MARK": str(mark)})
    run.wait_for_file(mark)
    assert run.interrupt() == 130, run.stderr
    assert "interrupted: 1 record(s) kept in results/edgebench.db under run" in run.stderr
    assert "Traceback" not in run.stderr
    assert [(r["model"], r["status"]) for r in json.loads(run.stdout)] == [("worker_models:tiny", "ok")]
    assert stored(tmp_path / "results" / "edgebench.db") == (
        [("interrupted",)], [("worker_models:tiny", "eager", "default", "ok")])
    with pytest.raises(ProcessLookupError):  # the measuring worker was killed with the run
        os.kill(int(mark.read_text()), 0)


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_between_records(tmp_path, signum, status):
    run = Interrupted(["run", "-m", "worker_models:tiny", "-m", "worker_models:hanging", "--input-shape", "3x8x8",
                       "-b", "eager", *FAST], tmp_path)
    run.wait_for_line("ok worker_models:tiny b1 eager")  # printed once the record is stored
    assert run.interrupt(signum) == status, run.stderr
    assert "interrupted: 1 record(s) kept" in run.stderr
    assert stored(tmp_path / "results" / "edgebench.db") == (
        [("interrupted",)], [("worker_models:tiny", "eager", "default", "ok")])


@pytest.fixture
def xavier(tmp_path):
    return make_emulated_jetson(tmp_path / "board", "xavier")


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_during_the_idle_power_sampling_nothing_is_stored_and_the_mode_is_restored(xavier, tmp_path, signum, status):
    run = Interrupted(["run", "--target", "xavier", "--mode", "maxn", "--device", "cpu", "-m", "worker_models:tiny",
                       "--input-shape", "3x8x8", "-b", "eager", *FAST], tmp_path, env=xavier.env)
    run.wait_for_line("idle power: sampling tegrastats")
    assert run.interrupt(signum) == status, run.stderr
    assert "interrupted before the run started: nothing stored" in run.stderr
    # The run row is created only once the board is ready: an interrupted set-up leaves none.
    assert not (tmp_path / "results" / "edgebench.db").exists()
    assert xavier.state()["mode"] == 2 and xavier.state()["history"] == [0, 2]  # MODE_15W again


SUITE = """
name = "two-modes"
[settings]
min_time = 0.2
max_time = 1.0
processes = 1
[[matrix]]
models = ["worker_models:tiny"]
targets = ["xavier"]
modes = ["maxn"]
backends = ["eager"]
input_shapes = ["3x8x8"]
[[matrix]]
models = ["interrupt_models:marked_hang"]
targets = ["xavier"]
modes = ["30w-all"]
backends = ["eager"]
input_shapes = ["3x8x8"]
"""


def test_during_a_suites_second_stage_the_first_stays_and_the_mode_is_restored(xavier, tmp_path):
    (tmp_path / "suite.toml").write_text(SUITE)
    mark = tmp_path / "measuring"
    run = Interrupted(["run", "--suite", "suite.toml", "--device", "cpu", "--no-power", "--warmup", "0.05",
                       "--min-iterations", "5", "--threads", "1"], tmp_path,
                      env={**xavier.env, "EDGEBENCH_TEST_MARK": str(mark)})
    run.wait_for_file(mark)
    assert run.interrupt() == 130, run.stderr
    assert "interrupted: 1 record(s) kept" in run.stderr
    assert stored(tmp_path / "results" / "edgebench.db") == (
        [("interrupted",)], [("worker_models:tiny", "eager", "maxn", "ok")])
    # maxn for the first stage and back, 30w-all for the second and back to MODE_15W.
    assert xavier.state()["mode"] == 2 and xavier.state()["history"] == [0, 2, 3, 2]


def test_during_prune_the_measured_records_stay_and_the_scratch_folder_goes(tmp_path):
    out = tmp_path / "pruned"
    run = Interrupted(["prune", "--model", "worker_models:tiny?channels=32", "--out", str(out), "--task",
                       "digits?size=16", "--train-steps", "5", "--rounds", "4", "--block-time", "0.02",
                       "--threads", "1", "--store", "results.db"], tmp_path)
    run.wait_for_line("pruning worker_models:tiny")
    assert run.interrupt() == 130, run.stderr
    kept = [line for line in run.stderr.splitlines() if line.startswith("interrupted: ")]
    assert len(kept) == 1 and "kept in results.db under run" in kept[0], run.stderr
    runs, records = stored(tmp_path / "results.db")
    assert runs == [("interrupted",)]
    assert kept[0].startswith(f"interrupted: {len(records)} record(s) kept")
    assert not (out / ".candidates").exists()


def test_a_second_ctrl_c_does_not_cut_the_mode_restore_short(xavier, tmp_path):
    # nvpmodel as the board's, noting each call and taking its time over a switch, so the second
    # SIGINT lands while the first one's restore is switching back.
    calls, mark, slow = tmp_path / "nvpmodel-calls", tmp_path / "measuring", tmp_path / "slow-bin"
    slow.mkdir()
    (slow / "nvpmodel").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n'
                                   f'if [ "$1" = "-m" ]; then sleep 2; fi\nexec {xavier.bin / "nvpmodel"} "$@"\n')
    (slow / "nvpmodel").chmod(0o755)
    env = {**xavier.env, "PATH": f"{slow}{os.pathsep}{xavier.env['PATH']}", "EDGEBENCH_TEST_MARK": str(mark)}
    run = Interrupted(["run", "--target", "xavier", "--mode", "maxn", "--device", "cpu", "--no-power", "-m",
                       "interrupt_models:marked_hang", "--input-shape", "3x8x8", "-b", "eager", *FAST], tmp_path, env=env)
    run.wait_for_file(mark)
    run.proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 60
    while "-m 2" not in (calls.read_text().splitlines() if calls.exists() else []):
        assert time.monotonic() < deadline and run.proc.poll() is None, run.stderr
        time.sleep(0.05)
    assert run.interrupt() == 130, run.stderr
    assert xavier.state()["mode"] == 2 and xavier.state()["history"] == [0, 2]
    assert stored(tmp_path / "results" / "edgebench.db") == ([("interrupted",)], [])

"""Workers taking turns: each side of a pair in a long-lived worker of its own, asked for one block
at a time in the seeded, counterbalanced order; real ONNX Runtime workers on this interpreter."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from edgebench.board.paired_blocks import block_orders
from edgebench.models import resolve_model
from edgebench.sweep.paired import Pairing, measure_paired
from edgebench.sweep.plan import Measurement
from edgebench.errors import UsageError
from edgebench.sweep import turns
from edgebench.sweep.turns import TurnWorker, shared_cpus, take_turns

from local_sweep import local_sweep
from onnx_models import conv_stack

FAST = Pairing(rounds=4, block_s=0.01, warmup_s=0.02, seed=3)


@pytest.fixture
def sweep():
    return local_sweep("run-turns")


@pytest.fixture
def pair(tmp_path):
    """2 and 16 convolutions: the second is much slower on a loaded machine too."""
    return [resolve_model(str(conv_stack(tmp_path / f"net{convs}.onnx", convs=convs, channels=16, size=32)))
            for convs in (2, 16)]


def loads(sweep, models):
    return {index: {**sweep.request(Measurement(model, "onnxruntime", 1, "fp32")), "task": "load",
                    "pairing": {"block_s": FAST.block_s, "warmup_s": FAST.warmup_s}}
            for index, model in enumerate(models)}


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_each_side_has_a_worker_of_its_own_and_their_blocks_take_turns(sweep, pair):
    entries, orders = take_turns(loads(sweep, pair), [sys.executable] * 2, 4, FAST.block_s, FAST.seed, 60)
    assert [entries[i]["status"] for i in (0, 1)] == ["ok", "ok"], entries
    pids = [entries[i]["pid"] for i in (0, 1)]
    assert pids[0] != pids[1] and os.getpid() not in pids
    assert orders == block_orders(2, 4, FAST.seed)
    # Each worker's own clock (time.perf_counter, one monotonic clock per machine): its blocks
    # fall between the other's, one running at a time, in the order asked.
    timeline = sorted((start, end, side) for side in (0, 1) for start, end in entries[side]["windows"])
    assert [side for _, _, side in timeline] == [side for order in orders for side in order]
    assert all(end <= next_start for (_, end, _), (next_start, _, _) in zip(timeline, timeline[1:]))
    assert all(len(entries[i]["blocks"]) == 4 and entries[i]["warmup_iterations"] >= 1 for i in (0, 1))
    assert all(gone(pid) for pid in pids)


def test_measured_by_workers_taking_turns_the_records_say_so(sweep, pair):
    paired = measure_paired(sweep, pair, "onnxruntime", FAST, roles=["reference", "contender"],
                            pythons=[sys.executable] * 2)
    assert [entry.status for entry in paired.entries] == ["ok", "ok"]
    assert paired.ratio(1, 0).ratio > 1.5 and paired.ratio(1, 0).low > 1.0
    pairing = paired.entries[1].record.env["pairing"]
    assert pairing["workers"] == 2 and pairing["role"] == "contender" and pairing["seed"] == FAST.seed
    assert pairing["orders"] == block_orders(2, 4, FAST.seed)
    assert [side["interpreter"] for side in pairing["sides"]] == [sys.executable] * 2
    assert pairing["cpus"] == (sorted(shared_cpus(1)) if shared_cpus(1) else
                               "any: the measurement's threads use every CPU")
    assert all(side["runtime"].startswith("onnxruntime ") for side in pairing["sides"])
    record = paired.entries[0].record
    assert record.backend_options.get("allow_spinning") is False
    assert record.memory_mb.host_peak > 0  # each process held one model


def test_the_shared_cpus_are_the_last_the_process_may_use_and_none_when_all_are_used():
    allowed = sorted(os.sched_getaffinity(0))
    assert shared_cpus(None) is None and shared_cpus(len(allowed)) is None
    if len(allowed) > 1:
        assert shared_cpus(1) == {allowed[-1]}


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: nothing to pin the workers to")
def test_every_worker_taking_turns_runs_on_the_same_cpus(sweep, pair, monkeypatch):
    """Left to the scheduler, two workers settle on cores of their own and the ratio measures the
    cores: both are pinned to one CPU for a one-thread measurement, before they load."""
    seen = []
    ask = TurnWorker.ask

    def look_then_ask(worker, request, timeout_s):
        seen.append((request["task"], os.sched_getaffinity(worker.process.pid)))
        return ask(worker, request, timeout_s)

    monkeypatch.setattr(TurnWorker, "ask", look_then_ask)
    cpus = shared_cpus(1)
    entries, _ = take_turns(loads(sweep, pair), [sys.executable] * 2, 2, FAST.block_s, FAST.seed, 60, cpus)
    assert [entries[i]["status"] for i in (0, 1)] == ["ok", "ok"], entries
    assert [task for task, _ in seen] == ["load", "load", "block", "block", "block", "block"]
    assert all(affinity == cpus for _, affinity in seen)


def test_a_killed_worker_is_an_error_result_that_says_how_it_ended(sweep, pair):
    with TurnWorker(sys.executable) as worker:
        loaded = worker.ask(loads(sweep, pair)[0], 60)
        assert loaded["status"] == "ok", loaded
        os.kill(loaded["pid"], signal.SIGKILL)
        result = worker.ask({"task": "block", "block_s": 0.01}, 60)
        assert result["status"] == "error" and "SIGKILL" in result["error"], result
        assert worker.process is None
        assert worker.ask({"task": "block", "block_s": 0.01}, 60)["error"] == "the worker has ended"
    assert gone(loaded["pid"])


def test_a_worker_killed_mid_measurement_fails_every_side_and_the_other_worker_is_ended(sweep, pair, monkeypatch):
    loaded, blocks = [], []
    ask = TurnWorker.ask

    def ask_then_kill(worker, request, timeout_s):
        if request["task"] == "block" and len(blocks) == 2:  # the third block's worker dies first
            os.kill(worker.process.pid, signal.SIGKILL)
        result = ask(worker, request, timeout_s)
        (loaded if request["task"] == "load" else blocks).append(result)
        return result

    monkeypatch.setattr(TurnWorker, "ask", ask_then_kill)
    entries, _ = take_turns(loads(sweep, pair), [sys.executable] * 2, 4, FAST.block_s, FAST.seed, 60)
    assert [entries[i]["status"] for i in (0, 1)] == ["error", "error"]
    assert entries[0]["error"].startswith("the worker of model") and "SIGKILL" in entries[0]["error"]
    assert len(blocks) == 3 and all(gone(result["pid"]) for result in loaded)


def test_ctrl_c_between_blocks_ends_both_workers(sweep, pair, monkeypatch):
    loaded = []
    ask = TurnWorker.ask

    def interrupted_after_the_first_block(worker, request, timeout_s):
        result = ask(worker, request, timeout_s)
        if request["task"] != "load":
            raise KeyboardInterrupt
        loaded.append(result)
        return result

    monkeypatch.setattr(TurnWorker, "ask", interrupted_after_the_first_block)
    with pytest.raises(KeyboardInterrupt):
        take_turns(loads(sweep, pair), [sys.executable] * 2, 4, FAST.block_s, FAST.seed, 60)
    assert len(loaded) == 2 and all(gone(result["pid"]) for result in loaded)


def test_an_interpreter_that_cannot_start_is_one_line(sweep, pair, tmp_path):
    from edgebench.errors import UsageError

    with pytest.raises(UsageError, match="cannot start"):
        take_turns(loads(sweep, pair), [sys.executable, str(tmp_path / "no-python")], 4, 0.01, 1, 60)


def test_a_remote_transport_refuses_workers_taking_turns(sweep, pair, monkeypatch):
    from edgebench.errors import UsageError

    monkeypatch.setattr(sweep.worker, "remote", True, raising=False)
    with pytest.raises(UsageError, match="this machine only"):
        measure_paired(sweep, pair, "onnxruntime", FAST, pythons=[sys.executable] * 2)


def test_cpus_a_worker_cannot_be_pinned_to_are_one_line_and_no_worker_is_left():
    started = []
    real_start = turns.start_worker

    def recording_start(*args, **kwargs):
        started.append(real_start(*args, **kwargs))
        return started[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(turns, "start_worker", recording_start)
        with pytest.raises(UsageError, match=r"cannot pin a worker to CPUs \[100000\]"):
            TurnWorker(sys.executable, {100000})
    assert len(started) == 1 and started[0].poll() is not None  # ended, not left running

"""The run session every client uses: one run row for all its stages, created only once a board
is ready, records stored as they are made, and the row finished as the block ended."""

import os
import signal
from pathlib import Path

import pytest

from edgebench.errors import UsageError
from edgebench.models import InputSpec, ResolvedModel
from edgebench.results.record import Settings
from edgebench.results.store import Store
from edgebench.interrupts import Terminated, exit_status, interrupt_handlers, sigint_deferred
from edgebench.session import available_definition, device_of, run_session
from edgebench.sweep.plan import Measurement
from fake_jetson import make_emulated_jetson

MODEL = ResolvedModel(spec="m.onnx", name="m.onnx", kind="onnx", recipe=None, onnx_path=Path("m.onnx"),
                      fingerprint="sha256:" + "0" * 64, inputs=(InputSpec("input", ("batch", 16), "float32"),))
SETTINGS = Settings(min_time_s=1, max_time_s=2, min_iterations=5, warmup_s=0.1, target_ci=0.01, timeout_s=60)
# No worker starts for it: the record says why it cannot run here.
UNAVAILABLE = Measurement(MODEL, "tensorrt", 1, unavailable="no TensorRT here")


def measure_in(session, definition):
    with session.stage(definition, definition.default_device, measure_power=False) as ready:
        record = ready.sweep(SETTINGS).measure(UNAVAILABLE)
        session.keep(record)
    return record


def runs_in(store):
    with Store.open(store, create=False) as opened:
        return [(run.status, len(opened.records(run.id))) for run in opened.runs()]


def test_every_stage_writes_under_one_run_that_finishes(tmp_path):
    store, lines = tmp_path / "r.db", []
    local = available_definition("local")
    with run_session(store, tags={"purpose": "test"}, log=lines.append, command=["bench"]) as session:
        assert session.run_id is None and not store.exists()  # nothing before a board is ready
        first, second = measure_in(session, local), measure_in(session, local)
    assert first.run_id == second.run_id == session.run_id
    assert (first.status, first.error, first.target, first.mode) == ("unavailable", "no TensorRT here", local.name,
                                                                     "default")
    assert first.env["host"]  # the measured machine's fingerprint, from its own worker
    assert session.records == [first, second]
    assert runs_in(store) == [("finished", 2)]
    with Store.open(store) as opened:
        run = opened.get_run(session.run_id)
    assert (run.tags, run.command) == ({"purpose": "test"}, ["bench"])


@pytest.mark.parametrize("raised, status", [(KeyboardInterrupt, "interrupted"), (Terminated, "interrupted"),
                                            (RuntimeError, "failed")])
def test_an_interrupted_or_failed_run_keeps_its_records_and_says_how_it_ended(tmp_path, raised, status):
    store = tmp_path / "r.db"
    with pytest.raises(raised):
        with run_session(store) as session:
            measure_in(session, available_definition("local"))
            raise raised()
    assert runs_in(store) == [(status, 1)]
    assert session.interrupted_line() == f"interrupted: 1 record(s) kept in {store} under run {session.run_id}"


def test_a_refused_power_mode_leaves_no_run_and_an_interrupt_before_the_board_nothing(tmp_path, monkeypatch):
    board = make_emulated_jetson(tmp_path / "board", "xavier")
    for name, value in board.env.items():
        monkeypatch.setenv(name, value)
    xavier = available_definition("xavier")
    store = tmp_path / "r.db"
    with pytest.raises(UsageError, match="needs a reboot"):
        with run_session(store) as session:
            with session.stage(xavier, "cpu", mode="10w", measure_power=False):
                pass
    assert not store.exists() and session.run_id is None
    assert session.interrupted_line() == "interrupted before the run started: nothing stored"
    assert board.state()["mode"] == 2 and "history" not in board.state()


def test_a_stage_restores_the_mode_it_set(tmp_path, monkeypatch):
    board = make_emulated_jetson(tmp_path / "board", "xavier")
    for name, value in board.env.items():
        monkeypatch.setenv(name, value)
    with run_session(tmp_path / "r.db") as session:
        with session.stage(available_definition("xavier"), "cpu", mode="maxn", measure_power=False) as ready:
            assert board.state()["mode"] == 0
            assert ready.sweep(SETTINGS).config.mode == "maxn"
            session.keep(ready.sweep(SETTINGS).measure(UNAVAILABLE))
    assert board.state()["history"] == [0, 2]
    assert session.records[0].env["nvpmodel"] == {"id": 0, "name": "MAXN"}


def test_ctrl_c_inside_a_deferred_block_takes_effect_when_it_ends():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # pytest may run with SIGINT ignored
    done = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with sigint_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                done.append("the whole block")
        assert done == ["the whole block"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_sigterm_inside_a_deferred_block_is_taken_like_ctrl_c_when_it_ends():
    before = signal.getsignal(signal.SIGTERM)
    done = []
    with interrupt_handlers():
        with pytest.raises(Terminated) as raised:
            with sigint_deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                done.append("the whole block")
    assert done == ["the whole block"]
    assert isinstance(raised.value, KeyboardInterrupt) and exit_status(raised.value) == 143
    assert exit_status(KeyboardInterrupt()) == 130
    assert signal.getsignal(signal.SIGTERM) == before  # the CLI's handlers go with it


def test_device_and_target_checks_are_usage_errors():
    local = available_definition("local")
    assert device_of(local, None) == local.default_device
    with pytest.raises(UsageError, match=f"target {local.name} has no device 'dla7'"):
        device_of(local, "dla7")
    with pytest.raises(UsageError, match="target xavier cannot run here"):
        available_definition("xavier")

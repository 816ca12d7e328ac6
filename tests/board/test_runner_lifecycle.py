"""The worker closes every runner it made, on every path: success, error, exception, interrupt."""

import pytest

from edgebench.board import runners, worker
from edgebench.board.runners.base import Runner

FAST = {"min_time_s": 0.0, "max_time_s": 10.0, "min_iterations": 50, "warmup_s": 0.0, "target_ci": 0.5}
INPUTS = [{"name": "x", "shape": [1, 4], "dtype": "float32"}]


class ScriptedRunner(Runner):
    """Does nothing but count its calls; ``model`` says which call fails and how.

    Calls: 1 is the first (cold) inference, 2 the warm-up's, 3 and later the timed loop's."""

    name = "scripted"
    closed = []  # the models of the runners closed, in order; reset by the fixture

    def import_backend(self):
        pass

    def load(self):
        if self.request["model"].get("fail_load"):
            raise RuntimeError("cannot load %s" % self.request["model"]["name"])

    def bind(self, inputs):
        self.calls = 0

    def infer(self):
        self.calls += 1
        if self.calls == self.request["model"].get("fail_at"):
            raise self.request["model"].get("raise", RuntimeError)("failed at call %d" % self.calls)

    def describe(self):
        return {"library": "none"}

    def close(self):
        ScriptedRunner.closed.append(self.request["model"]["name"])


@pytest.fixture(autouse=True)
def scripted(monkeypatch):
    ScriptedRunner.closed = []
    monkeypatch.setattr(runners, "runner_class", lambda name: ScriptedRunner)


def measure(**model):
    return worker.handle({"protocol": 1, "backend": "scripted", "model": dict(model, name="m"),
                          "inputs": INPUTS, "settings": FAST})


def paired(*models):
    return worker.handle({"protocol": 1, "task": "paired", "backend": "scripted", "models": list(models),
                          "inputs": INPUTS, "pairing": {"rounds": 2, "block_s": 0.0, "warmup_s": 0.0}})


def test_a_measurement_closes_its_runner():
    assert measure()["status"] == "ok"
    assert ScriptedRunner.closed == ["m"]


def test_a_runner_whose_infer_raises_mid_loop_is_closed():
    result = measure(fail_at=10)
    assert (result["status"], result["error"]) == ("error", "RuntimeError: failed at call 10")
    assert ScriptedRunner.closed == ["m"]


def test_a_runner_that_fails_to_load_is_closed():
    assert measure(fail_load=True)["status"] == "error"
    assert ScriptedRunner.closed == ["m"]


def test_an_interrupt_mid_loop_still_closes_the_runner():
    with pytest.raises(KeyboardInterrupt):
        measure(fail_at=10, **{"raise": KeyboardInterrupt})
    assert ScriptedRunner.closed == ["m"]


def test_paired_closes_every_runner_when_all_went_well():
    result = paired({"name": "a"}, {"name": "b"})
    assert result["status"] == "ok" and [len(entry["blocks"]) for entry in result["models"]] == [2, 2]
    assert sorted(ScriptedRunner.closed) == ["a", "b"]


def test_paired_closes_the_candidate_that_failed_to_load_too():
    result = paired({"name": "a"}, {"name": "b", "fail_load": True})
    assert [entry["status"] for entry in result["models"]] == ["ok", "error"]
    assert sorted(ScriptedRunner.closed) == ["a", "b"]


def test_paired_closes_every_runner_when_the_reference_fails_to_load():
    assert paired({"name": "a", "fail_load": True}, {"name": "b"})["status"] == "error"
    assert sorted(ScriptedRunner.closed) == ["a", "b"]


def test_paired_closes_every_runner_when_a_block_raises():
    # Calls 1 and 2 are the first inference and the warm-up; 3 onwards are the rounds' blocks.
    result = paired({"name": "a"}, {"name": "b", "fail_at": 4})
    assert (result["status"], result["error"]) == ("error", "RuntimeError: failed at call 4")
    assert sorted(ScriptedRunner.closed) == ["a", "b"]

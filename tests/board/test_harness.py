"""The timing loop's rules, driven by a simulated clock so every outcome is deterministic."""

import numpy as np
import pytest

from edgebench.board.harness import FirstInferenceError, LoopSettings, measure, timed_loop


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class SimulatedRunner:
    """Each inference advances the clock by the next latency of ``latencies_ms`` (cycled)."""

    def __init__(self, clock, latencies_ms, load_s=0.5, fail_first=False):
        self.clock, self.latencies, self.load_s, self.fail_first = clock, latencies_ms, load_s, fail_first
        self.calls = 0
        self.bound = None

    def import_backend(self):
        self.clock.now += 0.25

    def load(self):
        self.clock.now += self.load_s

    def bind(self, inputs):
        self.bound = inputs

    def infer(self):
        if self.fail_first:
            raise RuntimeError("expected input[1, 4, 8, 8] to have 3 channels")
        self.clock.now += self.latencies[self.calls % len(self.latencies)] / 1e3
        self.calls += 1

    def synchronize(self):
        pass


def test_measure_reports_build_first_inference_and_samples():
    clock = Clock()
    runner = SimulatedRunner(clock, [20.0] + [10.0] * 1000)
    result = measure(runner, {"x": "array"}, LoopSettings(min_time_s=1, max_time_s=5, warmup_s=0.1), clock)
    assert runner.bound == {"x": "array"}
    assert result["import_s"] == pytest.approx(0.25)
    assert result["build_s"] == pytest.approx(0.5)
    assert result["first_inference_ms"] == pytest.approx(20.0)
    assert result["warmup_iterations"] == 10
    assert result["stop_reason"] == "converged"


def test_steady_latency_stops_once_minimums_are_met():
    clock = Clock()
    runner = SimulatedRunner(clock, [10.0])
    samples, reason = timed_loop(runner.infer, runner.synchronize,
                                 LoopSettings(min_time_s=2.0, max_time_s=30.0, min_iterations=20), clock)
    assert reason == "converged"
    assert 2.0 <= len(samples) * 0.010 < 2.5
    assert samples == pytest.approx([10.0] * len(samples))


def test_min_iterations_outlasts_min_time_for_slow_models():
    clock = Clock()
    runner = SimulatedRunner(clock, [500.0])
    samples, reason = timed_loop(runner.infer, runner.synchronize,
                                 LoopSettings(min_time_s=1.0, max_time_s=60.0, min_iterations=20), clock)
    assert reason == "converged"
    assert len(samples) == 20


def test_noisy_latency_runs_to_max_time():
    clock = Clock()
    runner = SimulatedRunner(clock, list(np.random.default_rng(0).lognormal(np.log(10.0), 0.5, 997)))
    samples, reason = timed_loop(runner.infer, runner.synchronize,
                                 LoopSettings(min_time_s=0.5, max_time_s=3.0, min_iterations=10), clock)
    assert reason == "max_time"
    elapsed = sum(samples) / 1e3
    assert 3.0 <= elapsed < 3.5


def test_noise_that_averages_out_converges_before_max_time():
    clock = Clock()
    # 2% jitter: the median's interval narrows as samples accumulate
    runner = SimulatedRunner(clock, list(np.random.default_rng(0).normal(10.0, 0.2, 997)))
    samples, reason = timed_loop(runner.infer, runner.synchronize,
                                 LoopSettings(min_time_s=0.5, max_time_s=30.0, min_iterations=10), clock)
    assert reason == "converged"
    assert sum(samples) / 1e3 < 5.0


def test_failing_first_inference_is_reported_as_such():
    clock = Clock()
    with pytest.raises(FirstInferenceError):
        measure(SimulatedRunner(clock, [1.0], fail_first=True), {}, LoopSettings(), clock)


def test_settings_reject_max_below_min():
    with pytest.raises(ValueError):
        LoopSettings(min_time_s=5, max_time_s=1)

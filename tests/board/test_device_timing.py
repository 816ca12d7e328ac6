"""Device time next to host time: the harness with a pure-Python stand-in for CUDA events."""

import pytest

from edgebench.board.harness import LoopSettings, measure, timed_loop
from edgebench.sweep.processes import pool


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class FakeDeviceTimer:
    """CUDA events as the harness sees them: the device time of each iteration is the scripted
    ``device_ms``, shorter than the host's (launch and synchronization overhead)."""

    def __init__(self, log, device_ms):
        self.log, self.device_ms, self.iteration = log, device_ms, 0

    def record_start(self):
        self.log.append("start")

    def record_end(self):
        self.log.append("end")

    def elapsed_ms(self):
        self.log.append("elapsed")
        value = self.device_ms[self.iteration % len(self.device_ms)]
        self.iteration += 1
        return value


class AsyncRunner:
    """An asynchronous device: each inference costs ``host_ms`` of host time."""

    def __init__(self, clock, host_ms, device_ms=None, offers_timer=True):
        self.clock, self.host_ms, self.device_ms = clock, host_ms, device_ms
        self.log = []
        if offers_timer:
            self.device_timer = lambda: FakeDeviceTimer(self.log, device_ms) if device_ms else None

    def import_backend(self):
        pass

    def load(self):
        self.clock.now += 1.0

    def bind(self, inputs):
        pass

    def infer(self):
        self.log.append("infer")
        self.clock.now += self.host_ms / 1e3

    def synchronize(self):
        self.log.append("sync")


SETTINGS = LoopSettings(min_time_s=0.5, max_time_s=5.0, min_iterations=10, warmup_s=0.05)


def test_each_timed_iteration_gets_its_device_time():
    clock = Clock()
    runner = AsyncRunner(clock, host_ms=10.0, device_ms=[8.0, 8.5])
    device_samples = []
    samples, reason = timed_loop(runner.infer, runner.synchronize, SETTINGS, clock,
                                 device_timer=FakeDeviceTimer(runner.log, [8.0, 8.5]),
                                 device_samples=device_samples)
    assert reason == "converged"
    assert len(device_samples) == len(samples) >= 10
    assert device_samples[:4] == [8.0, 8.5, 8.0, 8.5]
    assert samples == pytest.approx([10.0] * len(samples))  # host time is untouched


def test_events_bracket_the_inference_and_are_read_after_the_host_time():
    clock = Clock()
    runner = AsyncRunner(clock, host_ms=10.0, device_ms=[8.0])
    timed_loop(runner.infer, runner.synchronize, SETTINGS, clock,
               device_timer=FakeDeviceTimer(runner.log, [8.0]), device_samples=[])
    assert runner.log[:10] == ["start", "infer", "end", "sync", "elapsed"] * 2


def test_measure_returns_device_samples_when_the_runner_has_a_timer():
    clock = Clock()
    result = measure(AsyncRunner(clock, host_ms=10.0, device_ms=[9.0]), {}, SETTINGS, clock)
    assert len(result["device_samples_ms"]) == len(result["samples_ms"])
    assert set(result["device_samples_ms"]) == {9.0}


@pytest.mark.parametrize("runner_options", [{"offers_timer": False}, {"device_ms": None}])
def test_no_device_samples_without_a_timer(runner_options):
    """A CPU runner has no ``device_timer``; a GPU-capable runner on the CPU returns None."""
    clock = Clock()
    result = measure(AsyncRunner(clock, host_ms=10.0, **runner_options), {}, SETTINGS, clock)
    assert "device_samples_ms" not in result
    assert len(result["samples_ms"]) >= 10


def worker_result(samples, device_samples=None):
    result = {"status": "ok", "samples_ms": samples, "stop_reason": "converged", "warmup_iterations": 1,
              "warnings": [], "memory_mb": {"host_peak": 10.0}}
    if device_samples is not None:
        result["device_samples_ms"] = device_samples
    return result


def test_processes_pool_their_device_samples():
    pooled = pool([worker_result([2.0, 2.1], [1.5, 1.6]), worker_result([2.2], [1.7])])
    assert pooled["device_samples_ms"] == [1.5, 1.6, 1.7]
    assert pooled["samples_ms"] == [2.0, 2.1, 2.2]


def test_device_samples_from_some_processes_only_are_dropped():
    pooled = pool([worker_result([2.0], [1.5]), worker_result([2.2])])
    assert "device_samples_ms" not in pooled

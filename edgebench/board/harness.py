"""The one timing loop every backend goes through.

The runner says how to load, infer and synchronize; the harness owns the rest: build time,
the first (cold) inference, a time-based warm-up, then timed iterations until at least
``min_iterations`` and ``min_time_s`` are met and the median's 95% interval is within
``target_ci`` of it, or ``max_time_s`` runs out. Every raw sample is kept.

A runner on an asynchronous device may offer ``device_timer()``: an object with
``record_start()``, ``record_end()`` and ``elapsed_ms()`` (CUDA events on the runner's stream).
Each timed iteration then also gets its device time; the host time stays the stopping rule's.
Board-side: Python 3.8, standard library plus numpy.
"""

from __future__ import annotations

import time

import numpy as np

from edgebench.board.stats import relative_ci_halfwidth

# How often the loop checks its stopping rule: at least this often in seconds, and no more
# often than every tenth of the time spent so far (the check sorts every sample).
CHECK_INTERVAL_S = 0.1
CHECK_FRACTION = 0.1


class LoopSettings:
    def __init__(self, min_time_s=2.0, max_time_s=30.0, min_iterations=20, warmup_s=1.0, target_ci=0.01):
        if max_time_s < min_time_s:
            raise ValueError("max_time_s must be at least min_time_s")
        self.min_time_s = min_time_s
        self.max_time_s = max_time_s
        self.min_iterations = min_iterations
        self.warmup_s = warmup_s
        self.target_ci = target_ci

    @classmethod
    def from_dict(cls, values):
        return cls(**values)


class FirstInferenceError(Exception):
    """The model failed on its first call: usually inputs it does not accept."""


def measure(runner, inputs, settings, clock=time.perf_counter, on_window=None):
    """Load, warm up and time ``runner``; return the raw result for the worker's record.

    ``on_window("start")`` and ``on_window("end")`` are called just outside the timed loop,
    for readings of the machine's state that must not disturb it."""
    result = prepare(runner, inputs, clock)
    warmup_iterations = warm_up(runner, settings.warmup_s, clock)
    device_timer = runner.device_timer() if hasattr(runner, "device_timer") else None
    device_samples = [] if device_timer is not None else None
    if on_window is not None:
        on_window("start")
    window_start = clock()
    samples, stop_reason = timed_loop(runner.infer, runner.synchronize, settings, clock,
                                      device_timer=device_timer, device_samples=device_samples)
    window_end = clock()
    if on_window is not None:
        on_window("end")
    result.update({
        "warmup_iterations": warmup_iterations,
        "samples_ms": samples,
        "stop_reason": stop_reason,
        "window": [window_start, window_end],
    })
    if device_samples is not None:
        result["device_samples_ms"] = device_samples
    return result


def prepare(runner, inputs, clock=time.perf_counter):
    """Import the backend, load the model, bind the inputs and run the first (cold) inference;
    ``{import_s, build_s, first_inference_ms}``. FirstInferenceError if that first call fails."""
    start = clock()
    runner.import_backend()
    import_s = clock() - start

    start = clock()
    runner.load()
    build_s = clock() - start

    runner.bind(inputs)
    start = clock()
    try:
        runner.infer()
        runner.synchronize()
    except Exception as exc:
        raise FirstInferenceError(exc)
    return {"import_s": import_s, "build_s": build_s, "first_inference_ms": (clock() - start) * 1e3}


def timed_loop(infer, synchronize, settings, clock=time.perf_counter, device_timer=None, device_samples=None):
    """Time ``infer`` + ``synchronize`` until the stopping rule holds; (samples_ms, reason).

    With a ``device_timer``, each iteration's device time is appended to ``device_samples``. Its
    events bracket ``infer`` on the device; recording the end event is a few microseconds inside
    the host time, and reading the elapsed time happens after the host time is taken."""
    samples = []
    append = samples.append
    started = clock()
    next_check = started + min(CHECK_INTERVAL_S, settings.min_time_s)
    while True:
        if device_timer is not None:
            device_timer.record_start()
        t0 = clock()
        infer()
        if device_timer is not None:
            device_timer.record_end()
        synchronize()
        t1 = clock()
        append((t1 - t0) * 1e3)
        if device_timer is not None:
            device_samples.append(device_timer.elapsed_ms())
        if t1 < next_check and len(samples) != settings.min_iterations:
            continue
        elapsed = t1 - started
        if elapsed >= settings.max_time_s:
            return samples, "max_time"
        if len(samples) >= settings.min_iterations and elapsed >= settings.min_time_s:
            if relative_ci_halfwidth(np.sort(np.asarray(samples))) <= settings.target_ci:
                return samples, "converged"
        next_check = clock() + max(CHECK_INTERVAL_S, CHECK_FRACTION * elapsed)


def warm_up(runner, seconds, clock=time.perf_counter):
    """Run until ``seconds`` have passed (at least once); return the number of iterations."""
    deadline = clock() + seconds
    iterations = 0
    while True:
        runner.infer()
        runner.synchronize()
        iterations += 1
        if clock() >= deadline:
            return iterations

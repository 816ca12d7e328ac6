"""The worker process: one JSON request on stdin, one JSON result on stdout.

Run as ``python -m edgebench.measure.worker``, always in a fresh process, so a crash, a leak
or a hang in the backend cannot touch anything else. Board-side: Python 3.8, standard library,
numpy and the one backend library being measured.

Three tasks. ``measure`` (the default) takes ``protocol, backend, device, model, inputs [{name,
shape, dtype}], settings, threads, backend_options, allow_hooks`` and optionally ``power
{source, interval_ms}``; its result has ``protocol, status ("ok" | "error" | "unavailable"),
error, warnings, backend {library, version, device, options, ...}, import_s, build_s,
first_inference_ms, warmup_iterations, samples_ms, stop_reason, window, system {start, end},
power, memory_mb {host_peak}, python``. ``idle`` takes ``power {source, interval_ms}`` and
``idle_s`` and samples the idle machine: ``idle {source, samples, avg_power_w, ram_used_mb}``.
``state`` reads temperatures and clocks: ``state {temperatures_c, cpu_mhz, gpu_mhz}``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import traceback

from edgebench.measure import power

PROTOCOL_VERSION = 1


def handle(request):
    """Measure what ``request`` asks for; every failure becomes a result, never an exception."""
    from edgebench.measure import system
    from edgebench.measure.harness import FirstInferenceError, Settings, measure
    from edgebench.measure.inputs import make_inputs
    from edgebench.runners import runner_class
    from edgebench.runners.base import RunnerError, RunnerUnavailable, first_line

    if request.get("protocol") != PROTOCOL_VERSION:
        return _failure("error", "worker speaks protocol %d, request has %r"
                        % (PROTOCOL_VERSION, request.get("protocol")))
    if request.get("task") == "idle":
        return sample_idle(request)
    if request.get("task") == "state":
        return {"status": "ok", "error": None, "warnings": [], "state": system.snapshot()}
    try:
        runner = runner_class(request["backend"])(request)
    except KeyError:
        return _failure("unavailable", "no runner named %r here" % request["backend"])
    snapshots = {}

    def on_window(edge):
        snapshots[edge] = system.snapshot()

    sampler, power_problem = _start_power(request.get("power"))
    try:
        result = measure(runner, make_inputs(request["inputs"]),
                         Settings.from_dict(request["settings"]), on_window=on_window)
    except RunnerUnavailable as exc:
        return _failure("unavailable", str(exc))
    except RunnerError as exc:
        return _failure("error", str(exc))
    except FirstInferenceError as exc:
        shapes = ", ".join("%s %s" % (s["name"], "x".join(map(str, s["shape"])))
                           for s in request["inputs"])
        return _failure("error", "first inference failed with inputs %s: %s: %s" % (
            shapes, type(exc.args[0]).__name__, first_line(exc.args[0])))
    except ImportError as exc:
        return _failure("unavailable", "backend library missing: %s" % exc)
    except MemoryError:
        return _failure("error", "out of memory")
    except Exception as exc:  # a bug or an unforeseen backend failure: keep the traceback
        traceback.print_exc()
        return _failure("error", "%s: %s" % (type(exc).__name__, first_line(exc)))
    finally:
        if sampler is not None:
            sampler.stop()
    result.update(
        status="ok",
        error=None,
        warnings=list(runner.warnings),
        backend=runner.describe(),
        system=snapshots,
        power=_window_power(sampler, power_problem, result["window"], len(result["samples_ms"])),
    )
    runner.close()
    return result


def sample_idle(request):
    """Power and RAM of the machine at rest, the baseline dynamic energy is measured against."""
    import time

    sampler, problem = _start_power(request.get("power"))
    if sampler is None:
        return _failure("unavailable", problem)
    start = time.perf_counter()
    time.sleep(request.get("idle_s", 2.0))
    end = time.perf_counter()
    sampler.stop()
    summary = power.window_summary(sampler.readings, start, end)
    if not summary["samples"]:
        return _failure("unavailable", "no %s readings in %.1f s of idle sampling%s" % (
            sampler.source, end - start, _problems(sampler)))
    return {"status": "ok", "error": None, "warnings": [], "idle": {
        "source": sampler.source, "samples": summary["samples"], "avg_power_w": summary["avg_power_w"],
        "ram_used_mb": summary["peak_ram_used_mb"]}}


def _start_power(settings):
    """(sampler, None) once started, or (None, why not); None, None when power was not asked for."""
    if not settings:
        return None, None
    try:
        return power.open_sampler(settings["source"], settings.get("interval_ms", 100)), None
    except power.PowerUnavailable as exc:
        return None, str(exc)


def _window_power(sampler, problem, window, iterations):
    if sampler is None:
        return {"unavailable": problem} if problem else None
    summary = power.window_summary(sampler.readings, window[0], window[1])
    if not summary["samples"]:
        return {"source": sampler.source, "unavailable": "no %s readings inside the %.2f s measurement window%s"
                % (sampler.source, window[1] - window[0], _problems(sampler))}
    window_s = window[1] - window[0]
    return {
        "source": sampler.source,
        "samples": summary["samples"],
        "window_s": window_s,
        "energy_j": summary["avg_power_w"] * window_s,
        "iterations": iterations,
        "peak_ram_used_mb": summary["peak_ram_used_mb"],
        "tegrastats": [_board_state(detail) for detail in summary["details"]],
    }


def _board_state(sample):
    """Temperatures and clocks of one tegrastats reading, in the form of ``system.snapshot()``."""
    gpu_mhz = (sample.engines.get("GR3D_FREQ") or {}).get("freq_mhz")
    if isinstance(gpu_mhz, list):  # one clock per GPC on Orin
        gpu_mhz = max(gpu_mhz) if gpu_mhz else None
    return {
        "temperatures_c": dict(sample.temperatures),
        "cpu_mhz": [core[1] for core in sample.cpus if core and core[1] is not None],
        "gpu_mhz": gpu_mhz,
    }


def _problems(sampler):
    return " (%s)" % sampler.problems[-1] if sampler.problems else ""


def main():
    # Whatever the backend prints (Python or C++) must not mix with the result on stdout:
    # keep a private copy of stdout for the result and point fd 1 at stderr.
    result_stream = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        request = json.load(sys.stdin)
    except ValueError as exc:
        result = _failure("error", "worker request is not JSON: %s" % exc)
    else:
        result = handle(request)
    result["protocol"] = PROTOCOL_VERSION
    result["memory_mb"] = {"host_peak": _peak_rss_mb()}
    result["python"] = platform.python_version()
    json.dump(result, result_stream)
    result_stream.write("\n")
    result_stream.flush()


def _failure(status, message):
    return {"status": status, "error": message, "warnings": []}


def _peak_rss_mb():
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    scale = 1.0 / 1024 if sys.platform != "darwin" else 1.0 / (1024 * 1024)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


if __name__ == "__main__":
    main()

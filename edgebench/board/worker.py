"""The worker process: one JSON request on stdin, one JSON result on stdout.

Run as ``python -m edgebench.board.worker``, always in a fresh process, so a crash, a leak
or a hang in the backend cannot touch anything else. Board-side: Python 3.8, standard library,
numpy and the one backend library being measured.

Five tasks. ``measure`` (the default) takes ``protocol, backend, device, model, inputs [{name,
shape, dtype}], settings, threads, backend_options, allow_hooks`` and optionally ``power
{source, interval_ms}``, ``precision`` (fp32 | fp16 | int8), ``include_copies``, ``cuda_graphs``,
``profile_layers``, ``engine_cache_dir`` and ``gpu_state`` (read NVML at the window's edges);
its result has ``protocol, status ("ok" | "error" | "unavailable"), error, warnings, backend
{library, version, device, options, ...}, import_s, build_s, first_inference_ms,
warmup_iterations, samples_ms, stop_reason, window, system {start, end}, power, memory_mb
{host_peak}, python``, and where they apply ``device_samples_ms`` (CUDA events),
``layer_profile`` and ``gpu_state {start, end} | {unavailable}``. ``idle`` takes ``power {source, interval_ms}`` and
``idle_s`` and samples the idle machine: ``idle {source, samples, avg_power_w, ram_used_mb}``.
``state`` reads temperatures and clocks: ``state {temperatures_c, cpu_mhz, gpu_mhz}``.
``environment`` describes the machine: ``environment {host, os, cpu_model, python, packages, jetson, ...}``.
``paired`` takes what ``measure`` takes, with ``models`` (a list of model fields, the first the
reference) in place of ``model``, optionally ``model_inputs`` (one ``inputs`` list per model, for
models that take different inputs), and ``pairing {rounds, block_s, warmup_s, seed}`` in place of
``settings``, and times the models in alternating blocks: ``models [{status, error, import_s, build_s,
first_inference_ms, warmup_iterations, blocks [[ms, ...] per round], backend, warnings}]`` and
``orders`` (per round, the indices of ``models`` as they ran; ``seed`` draws them, see
``paired_blocks.block_orders``; without one, the pre-seed order).

``python -m edgebench.board.worker --serve`` is the long-lived form, one side of a paired
measurement whose sides cannot share a process (``serve``): one JSON object a line each way.
``load`` takes what ``paired`` takes, with ``model`` in place of ``models``, and loads, binds and
warms that model: ``{status, error, warnings, import_s, build_s, first_inference_ms,
warmup_iterations, backend, pid}``. Then each ``block {block_s}`` times one block: ``{status, error,
samples_ms, window [start, end]}`` (``time.perf_counter``). ``close`` (or the end of stdin) closes
the runner and ends the process; so does any failed reply. Every reply, as every one-shot result,
carries ``protocol``, ``memory_mb`` and ``python``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import traceback

from edgebench.board import gpu_state, samplers

PROTOCOL_VERSION = 1


def handle(request):
    """Measure what ``request`` asks for; every failure becomes a result, never an exception."""
    from edgebench.board import system
    from edgebench.board.runners import runner_class

    if request.get("protocol") != PROTOCOL_VERSION:
        return _failure("error", "worker speaks protocol %d, request has %r"
                        % (PROTOCOL_VERSION, request.get("protocol")))
    if request.get("task") == "idle":
        return sample_idle(request)
    if request.get("task") == "state":
        return {"status": "ok", "error": None, "warnings": [], "state": system.snapshot()}
    if request.get("task") == "paired":
        return handle_paired(request)
    if request.get("task") == "environment":
        from edgebench.board.machine import machine_environment

        return {"status": "ok", "error": None, "warnings": [], "environment": machine_environment()}
    try:
        runner_type = runner_class(request["backend"])
    except KeyError:
        return _failure("unavailable", "no runner named %r here" % request["backend"])
    runner = runner_type(request)
    try:
        return _measure(runner, request)
    finally:  # on every path: a result, an exception, an interrupt
        runner.close()


def _measure(runner, request):
    """The ``measure`` task on a constructed runner, which the caller closes."""
    from edgebench.board import system
    from edgebench.board.harness import LoopSettings, measure
    from edgebench.board.synthetic_inputs import make_inputs

    snapshots, gpu_readings = {}, {}
    gpu, gpu_problem = _open_gpu_state(request.get("gpu_state"))

    def on_window(edge):
        snapshots[edge] = system.snapshot()
        if gpu is not None:
            gpu_readings[edge] = gpu.read()

    sampler, power_problem = None, None
    try:
        sampler, power_problem = _start_power(request.get("power"))
        result = measure(runner, make_inputs(request["inputs"]),
                         LoopSettings.from_dict(request["settings"]), on_window=on_window)
        layer_profile, profile_problem = _layer_profile(runner, request)
    except Exception as exc:
        return failure_for(exc, request)
    finally:
        if sampler is not None:
            sampler.stop()
        if gpu is not None:
            gpu.close()
    backend = runner.describe()
    result.update(
        status="ok",
        error=None,
        warnings=list(runner.warnings) + _unmet_requests(request, backend, profile_problem),
        backend=backend,
        system=snapshots,
        power=_window_power(sampler, power_problem, result["window"], len(result["samples_ms"]), gpu_readings),
    )
    if layer_profile is not None:
        result["layer_profile"] = layer_profile
    if request.get("gpu_state"):
        result["gpu_state"] = gpu_readings if gpu is not None else {"unavailable": gpu_problem}
    return result


def failure_for(exc, request):
    """The result for a measurement that raised ``exc``: expected failures in one line, anything
    else with its traceback on stderr."""
    from edgebench.board.harness import FirstInferenceError
    from edgebench.board.runners.base import RunnerError, RunnerUnavailable, first_line

    if isinstance(exc, RunnerUnavailable):
        return _failure("unavailable", str(exc))
    if isinstance(exc, RunnerError):
        return _failure("error", str(exc))
    if isinstance(exc, FirstInferenceError):
        shapes = ", ".join("%s %s" % (s["name"], "x".join(map(str, s["shape"])))
                           for s in request["inputs"])
        return _failure("error", "first inference failed with inputs %s: %s: %s" % (
            shapes, type(exc.args[0]).__name__, first_line(exc.args[0])))
    if isinstance(exc, ImportError):
        return _failure("unavailable", "backend library missing: %s" % exc)
    if isinstance(exc, MemoryError):
        return _failure("error", "out of memory")
    # A bug or an unforeseen backend failure: keep the traceback.
    traceback.print_exception(type(exc), exc, exc.__traceback__)
    return _failure("error", "%s: %s" % (type(exc).__name__, first_line(exc)))


def handle_paired(request):
    """Task ``paired``: the models of ``request["models"]`` alternate in timed blocks (see
    ``edgebench.board.paired_blocks``); one entry per model, a broken one does not stop the rest."""
    from edgebench.board.synthetic_inputs import make_inputs
    from edgebench.board.paired_blocks import PairingSettings, alternate, load_all
    from edgebench.board.runners import runner_class

    try:
        runner_type = runner_class(request["backend"])
    except KeyError:
        return _failure("unavailable", "no runner named %r here" % request["backend"])
    with contextlib.ExitStack() as closing:  # every runner closed, whatever happens
        runners = []
        inputs = request.get("model_inputs") or [request["inputs"]] * len(request["models"])
        for model, model_inputs in zip(request["models"], inputs):
            runners.append(runner_type(dict(request, model=model, inputs=model_inputs)))
            closing.callback(runners[-1].close)
        entries = load_all(runners, [make_inputs(specs) for specs in inputs], lambda exc: failure_for(exc, request))
        if entries[0]["status"] != "ok":
            return dict(entries[0], error="the reference model: %s" % entries[0]["error"])
        try:
            orders = alternate(runners, entries, PairingSettings.from_dict(request["pairing"]))
        except Exception as exc:
            return failure_for(exc, request)
        for runner, entry in zip(runners, entries):
            if entry["status"] == "ok":
                entry["backend"] = runner.describe()
                entry["warnings"] = list(runner.warnings)
    return {"status": "ok", "error": None, "warnings": [], "models": entries, "orders": orders}


def serve(lines, reply):
    """The ``--serve`` exchange (module docstring): answer each request of ``lines`` through
    ``reply``; after ``close``, the end of ``lines`` or a failed reply, close the runner and return."""
    runner = None
    try:
        for line in lines:
            try:
                request = json.loads(line)
            except ValueError as exc:
                reply(_failure("error", "worker request is not JSON: %s" % exc))
                return
            task = request.get("task")
            if task == "close":
                reply({"status": "ok", "error": None, "warnings": []})
                return
            if task == "load" and runner is None:
                runner, result = _load_one(request)
            elif task == "block" and runner is not None:
                result = _one_block(runner, request)
            else:
                result = _failure("error", "a serving worker takes load once, then block or close, not %r" % task)
            reply(result)
            if result["status"] != "ok":
                return
    finally:  # on every path: close, a failure, the end of stdin, an interrupt
        if runner is not None:
            runner.close()


def _load_one(request):
    """(runner or None, the ``load`` reply): the model loaded, bound and warmed up."""
    from edgebench.board.harness import prepare, warm_up
    from edgebench.board.runners import runner_class
    from edgebench.board.synthetic_inputs import make_inputs

    if request.get("protocol") != PROTOCOL_VERSION:
        return None, _failure("error", "worker speaks protocol %d, request has %r"
                              % (PROTOCOL_VERSION, request.get("protocol")))
    try:
        runner_type = runner_class(request["backend"])
    except KeyError:
        return None, _failure("unavailable", "no runner named %r here" % request["backend"])
    runner = runner_type(request)
    try:
        result = prepare(runner, make_inputs(request["inputs"]))
        result["warmup_iterations"] = warm_up(runner, request["pairing"]["warmup_s"])
    except Exception as exc:
        runner.close()
        return None, failure_for(exc, request)
    result.update(status="ok", error=None, warnings=list(runner.warnings), backend=runner.describe(),
                  pid=os.getpid())
    return runner, result


def _one_block(runner, request):
    """The ``block`` reply: one block of ``request["block_s"]`` seconds on the loaded runner."""
    import time

    from edgebench.board.paired_blocks import block_settings, time_block

    try:
        start = time.perf_counter()
        samples = time_block(runner, block_settings(request["block_s"]))
        end = time.perf_counter()
    except Exception as exc:
        return failure_for(exc, request)
    return {"status": "ok", "error": None, "warnings": [], "samples_ms": samples, "window": [start, end]}


def _open_gpu_state(wanted):
    """(GpuState, None) once opened, or (None, why not); (None, None) when not asked for."""
    if not wanted:
        return None, None
    try:
        return gpu_state.GpuState(0), None
    except gpu_state.NvmlUnavailable as exc:
        return None, str(exc)


def _layer_profile(runner, request):
    """(the runner's per-layer table, None) when asked for; (None, why not) when it cannot be had.
    Run after the timed loop: profiling slows every layer down."""
    if not request.get("profile_layers"):
        return None, None
    if not hasattr(runner, "layer_profile"):
        return None, "%s has no per-layer profiler (%s have)" % (request["backend"], ", ".join(_profiling_backends()))
    try:
        return runner.layer_profile(), None
    except Exception as exc:  # the measurement stands without its profile
        return None, "per-layer profiling failed: %s: %s" % (type(exc).__name__, exc)


def _profiling_backends():
    """The runners here with a ``layer_profile``, for the message to one without."""
    from edgebench.board.runners import runner_class, runner_names

    found = []
    for name in runner_names():
        try:
            if hasattr(runner_class(name), "layer_profile"):
                found.append(name)
        except Exception:  # a broken third-party entry point is not this message's business
            continue
    return found


def _unmet_requests(request, backend, profile_problem):
    """Warnings for what was asked of the backend and not done, so no record claims it."""
    warnings = []
    if profile_problem:
        warnings.append("--profile-layers: " + profile_problem)
    if request.get("cuda_graphs") and not backend.get("cuda_graphs"):
        warnings.append("--cuda-graphs: not used by %s on %s; measured without CUDA graphs"
                        % (request["backend"], request.get("device", "cpu")))
    return warnings


def sample_idle(request):
    """Power and RAM of the machine at rest, the baseline dynamic energy is measured against."""
    import time

    sampler, problem = _start_power(request.get("power"))
    if sampler is None:
        return _failure("unavailable", problem)
    try:
        start = time.perf_counter()
        time.sleep(request.get("idle_s", 2.0))
        end = time.perf_counter()
    finally:
        sampler.stop()
    summary = samplers.window_summary(sampler.readings, start, end)
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
        return samplers.open_sampler(settings["source"], settings.get("interval_ms", 100)), None
    except samplers.PowerUnavailable as exc:
        return None, str(exc)


def _window_power(sampler, problem, window, iterations, gpu_readings):
    if sampler is None:
        return {"unavailable": problem} if problem else None
    summary = samplers.window_summary(sampler.readings, window[0], window[1])
    if not summary["samples"]:
        return {"source": sampler.source, "unavailable": "no %s readings inside the %.2f s measurement window%s"
                % (sampler.source, window[1] - window[0], _problems(sampler))}
    source, window_s = sampler.source, window[1] - window[0]
    energy_j = summary["avg_power_w"] * window_s
    counted_j = gpu_state.counter_energy_j(gpu_readings.get("start"), gpu_readings.get("end"))
    if sampler.source == "nvml" and counted_j is not None:
        # The GPU's energy counter over the window: exact where sampled power only estimates.
        source, window_s, energy_j = "nvml-energy-counter", gpu_readings["end"]["time"] - gpu_readings["start"]["time"], counted_j
    return {
        "source": source,
        "samples": summary["samples"],
        "window_s": window_s,
        "energy_j": energy_j,
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

    def reply(result):
        result["protocol"] = PROTOCOL_VERSION
        result["memory_mb"] = {"host_peak": _peak_rss_mb()}
        result["python"] = platform.python_version()
        json.dump(result, result_stream)
        result_stream.write("\n")
        result_stream.flush()

    if sys.argv[1:] == ["--serve"]:
        serve(sys.stdin, reply)
        return
    try:
        request = json.load(sys.stdin)
    except ValueError as exc:
        reply(_failure("error", "worker request is not JSON: %s" % exc))
    else:
        reply(handle(request))


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

"""The worker process: one JSON request on stdin, one JSON result on stdout.

Run as ``python -m edgebench.measure.worker``, always in a fresh process, so a crash, a leak
or a hang in the backend cannot touch anything else. Board-side: Python 3.8, standard library,
numpy and the one backend library being measured.

Request fields: ``protocol, backend, device, model, inputs [{name, shape, dtype}], settings,
threads, backend_options, allow_hooks``. Result fields: ``protocol, status ("ok" | "error" |
"unavailable"), error, warnings, backend {library, version, device, options, ...},
import_s, build_s, first_inference_ms, warmup_iterations, samples_ms, stop_reason, memory_mb
{host_peak}, python``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import traceback

PROTOCOL_VERSION = 1


def handle(request):
    """Measure what ``request`` asks for; every failure becomes a result, never an exception."""
    from edgebench.measure.harness import FirstInferenceError, Settings, measure
    from edgebench.measure.inputs import make_inputs
    from edgebench.runners import runner_class
    from edgebench.runners.base import RunnerError, RunnerUnavailable, first_line

    if request.get("protocol") != PROTOCOL_VERSION:
        return _failure("error", "worker speaks protocol %d, request has %r"
                        % (PROTOCOL_VERSION, request.get("protocol")))
    try:
        runner = runner_class(request["backend"])(request)
    except KeyError:
        return _failure("unavailable", "no runner named %r here" % request["backend"])
    try:
        result = measure(runner, make_inputs(request["inputs"]),
                         Settings.from_dict(request["settings"]))
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
    result.update(
        status="ok",
        error=None,
        warnings=list(runner.warnings),
        backend=runner.describe(),
    )
    runner.close()
    return result


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

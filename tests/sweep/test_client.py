"""Every way a worker can end becomes a readable result, for real, in a subprocess."""

import time

import pytest

from edgebench.sweep.local_worker import LocalWorker, interpret

FAST = {"min_time_s": 0.2, "max_time_s": 1.0, "min_iterations": 5, "warmup_s": 0.0, "target_ci": 0.01}
IMAGE = [{"name": "x", "shape": [1, 3, 8, 8], "dtype": "float32"}]


def request(recipe):
    return {"protocol": 1, "backend": "eager", "device": "cpu", "model": recipe, "inputs": IMAGE,
            "settings": FAST, "threads": 1, "backend_options": {}, "allow_hooks": False}


@pytest.mark.parametrize("factory, message", [
    ("aborting", "worker aborted (SIGABRT) by native code"),
    ("segfaulting", "worker crashed with a segmentation fault (SIGSEGV)"),
    ("oom_killed", "worker killed by SIGKILL, most often the kernel's out-of-memory killer"),
])
def test_crashes_become_error_results(support_recipe, factory, message):
    result = LocalWorker().run(request(support_recipe(factory)), timeout_s=120)
    assert result["status"] == "error"
    assert result["error"].startswith(message)


def test_a_hang_is_killed_at_the_timeout(support_recipe):
    started = time.monotonic()
    result = LocalWorker().run(request(support_recipe("hanging")), timeout_s=15)
    assert result["status"] == "error"
    assert result["error"].startswith("timed out after 15 s")
    assert time.monotonic() - started < 30


def test_a_healthy_worker_returns_its_result(support_recipe):
    result = LocalWorker().run(request(support_recipe("tiny")), timeout_s=120)
    assert result["status"] == "ok"
    assert len(result["samples_ms"]) >= 5


def test_exit_without_result_quotes_the_last_line_of_stderr():
    result = interpret(1, "", "Traceback...\nImportError: libcudart.so.12: cannot open shared object file")
    assert result == {"status": "error", "warnings": [], "error": "worker exited with status 1 without a result; "
                      "last output: ImportError: libcudart.so.12: cannot open shared object file"}


def test_garbage_on_stdout_is_not_taken_for_a_result():
    assert interpret(0, "not json at all", "")["error"] == "worker exited with status 0 without a result"
    assert interpret(0, '{"status": "ok", "samples_ms": [1.0]}\n', "")["status"] == "ok"

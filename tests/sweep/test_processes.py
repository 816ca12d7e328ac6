import pytest

from edgebench.board import stats
from edgebench.sweep.processes import per_process_settings, pool, run_processes


def ok(samples, warnings=(), peak=100.0):
    return {"status": "ok", "samples_ms": samples, "stop_reason": "converged", "warmup_iterations": 2,
            "warnings": list(warnings), "memory_mb": {"host_peak": peak}, "build_s": 1.0, "first_inference_ms": 9.0}


def test_budgets_are_shared_and_warmup_is_not():
    settings = {"min_time_s": 3.0, "max_time_s": 30.0, "min_iterations": 31, "warmup_s": 1.0, "target_ci": 0.01}
    assert per_process_settings(settings, 3) == {"min_time_s": 1.0, "max_time_s": 10.0, "min_iterations": 11,
                                                 "warmup_s": 1.0, "target_ci": 0.01}


def test_pooling_keeps_every_sample_in_order_and_the_first_cold_start():
    results = [ok([1.0, 2.0, 3.0], ["a"], 100.0), {**ok([4.0, 5.0, 6.0], ["a", "b"], 120.0), "build_s": 0.5}]
    pooled = pool(results)
    assert pooled["samples_ms"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert pooled["process_p50s"] == [2.0, 5.0]
    assert pooled["build_s"] == 1.0
    assert pooled["warmup_iterations"] == 4
    assert pooled["warnings"] == ["a", "b"]
    assert pooled["memory_mb"] == {"host_peak": 120.0}
    assert pooled["stop_reason"] == "converged,converged"


def test_a_failed_process_stops_the_measurement_and_says_which():
    outcomes = iter([ok([1.0]), {"status": "error", "error": "worker aborted (SIGABRT)"}, ok([1.0])])
    calls = []

    def run_one():
        calls.append(1)
        return next(outcomes)

    result = run_processes(run_one, 3)
    assert result["error"] == "worker process 2 of 3: worker aborted (SIGABRT)"
    assert len(calls) == 2


def test_disagreeing_processes_are_warned_about():
    spread = stats.process_spread([10.6, 13.3, 11.2])
    assert spread == pytest.approx((13.3 - 10.6) / 11.2)
    warnings = stats.stability_warnings(
        {"cv": 0.01, "robust_cv": 0.01, "drift": 0.0, "outlier_fraction": 0.0, "ci95_halfwidth": 0.001,
         "process_p50s": [10.6, 13.3, 11.2], "process_spread": spread}, target_ci=0.01)
    assert warnings == ["processes disagree: per-process p50 10.600, 13.300, 11.200 ms (spread 24.1%); "
                        "the machine's state changed between worker processes"]
    assert stats.process_spread([10.0]) is None

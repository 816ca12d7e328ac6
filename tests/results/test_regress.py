"""The regression detector: its rule on realistic records, its calibration, and the store side."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import stats as scipy_stats

from edgebench.errors import UsageError
from edgebench.results.regress import (
    MIN_HISTORY,
    environment_differences,
    judge,
    regress,
    significance,
)
from edgebench.results.store import Store

from records import ENV, synthetic_record, unique_prefix

STEADY = dict(process_sd=0.003, sample_sd=0.04)


def history(p50s, **kwargs):
    """Earlier runs' records of one key, newest first."""
    return [synthetic_record(f"run-{index}", p50, seed=100 + index, **STEADY, **kwargs)
            for index, p50 in enumerate(p50s)]


QUIET_HISTORY = history([2.0, 2.02, 1.98, 2.01, 1.99])


# The rule


def test_a_clear_slowdown_on_a_quiet_key_is_a_regression():
    baseline = QUIET_HISTORY[0]
    verdict = judge(baseline, synthetic_record(p50=2.3, seed=1, **STEADY), "p50", history=QUIET_HISTORY)
    assert verdict.outcome == "regression"
    test = verdict.significance
    assert test.change == pytest.approx(0.15, abs=0.01)
    assert test.p_value < 0.01 and test.noise == "history" and test.history_runs == 5
    assert re.fullmatch(r"p50 2\.00\d -> 2\.\d+ ms \(\+1\d\.\d%\), p = [0-9.e-]+", verdict.reason)


def test_a_clear_speedup_is_an_improvement():
    verdict = judge(QUIET_HISTORY[0], synthetic_record(p50=1.7, seed=1, **STEADY), "p50", history=QUIET_HISTORY)
    assert verdict.outcome == "improvement"
    assert verdict.significance.change == pytest.approx(-0.15, abs=0.01)


def test_a_significant_change_within_the_threshold_is_unchanged():
    baseline = synthetic_record(p50=2.0, seed=1, process_sd=0.0, sample_sd=0.01, per_process=1000)
    contender = synthetic_record(p50=2.06, seed=2, process_sd=0.0, sample_sd=0.01, per_process=1000)
    verdict = judge(baseline, contender, "p50")
    assert verdict.significance.p_value < 1e-6
    assert verdict.outcome == "unchanged"
    assert "within the 5% threshold" in verdict.reason
    assert judge(baseline, contender, "p50", threshold=0.02).outcome == "regression"


def test_disagreeing_processes_make_a_large_change_insignificant():
    baseline = synthetic_record(p50=2.0, seed=1, process_factors=(0.85, 1.0, 1.2))
    contender = synthetic_record(p50=2.3, seed=2, process_factors=(1.2, 1.0, 0.85))
    verdict = judge(baseline, contender, "p50")
    test = verdict.significance
    assert verdict.outcome == "unchanged" and test.noise == "processes"
    assert test.p_value > 0.01 and test.detectable > abs(test.change) > 0.05
    assert "not significant" in verdict.reason
    assert "run-to-run variation is not counted" in verdict.reason
    # The same medians from processes that agree: now the change stands out.
    steady = judge(synthetic_record(p50=2.0, seed=1, **STEADY), synthetic_record(p50=2.3, seed=2, **STEADY), "p50")
    assert steady.outcome == "regression"


def test_a_noisy_history_makes_a_change_insignificant_that_tight_processes_would_flag():
    noisy = history([2.0, 2.4, 1.7, 2.2, 1.8, 2.5])
    baseline, contender = noisy[0], synthetic_record(p50=2.3, seed=1, **STEADY)
    assert judge(baseline, contender, "p50").outcome == "regression"  # two runs alone cannot see it
    verdict = judge(baseline, contender, "p50", history=noisy)
    assert verdict.outcome == "unchanged"
    assert verdict.significance.noise == "history" and verdict.significance.df == len(noisy) - 1
    assert "run-to-run" not in verdict.reason


def test_history_shorter_than_the_minimum_is_not_used():
    short = history([2.0, 2.4, 1.7][: MIN_HISTORY - 1])
    test = significance(short[0], synthetic_record(p50=2.3, seed=1, **STEADY), "p50", history=short)
    assert test.noise == "processes" and test.history_runs == MIN_HISTORY - 1


def test_single_process_records_fall_back_to_sample_noise_and_say_so():
    baseline = synthetic_record(p50=2.0, processes=1, per_process=1200, seed=1)
    contender = synthetic_record(p50=2.4, processes=1, per_process=1200, seed=2)
    verdict = judge(baseline, contender, "p50")
    assert verdict.outcome == "regression"
    assert verdict.significance.noise == "samples" and verdict.significance.df == float("inf")
    assert "raw samples (one process per record) only" in verdict.reason


def test_tail_metrics_are_judged_on_their_own_values_with_wider_noise():
    baseline = synthetic_record(p50=2.0, processes=1, per_process=1500, seed=1, sample_sd=0.2)
    contender = synthetic_record(p50=2.0, processes=1, per_process=1500, seed=2, sample_sd=0.2)
    p50, p99, mean = (significance(baseline, contender, metric) for metric in ("p50", "p99", "mean"))
    assert p99.baseline_value == baseline.latency_ms.p99 and mean.contender_value == contender.latency_ms.mean
    assert p99.standard_error > 1.5 * p50.standard_error


def simulated_runs(count, run_sd, process_sd, seed):
    """Runs of one setup whose medians move by a run effect and a per-process effect (log scale)."""
    rng = np.random.default_rng(seed)
    return [synthetic_record(f"run-{i}", p50=2.0 * float(np.exp(rng.normal(0, run_sd))), process_sd=process_sd,
                             per_process=100, seed=seed * 1000 + i) for i in range(count)]


def raw_sample_alarm(baseline, contender):
    """The rule this detector does not use: threshold + one-sided Mann-Whitney U on raw samples."""
    change = contender.latency_ms.p50 / baseline.latency_ms.p50 - 1
    test = scipy_stats.mannwhitneyu(contender.samples_ms, baseline.samples_ms, alternative="greater")
    return change > 0.05 and test.pvalue < 0.01


def test_false_alarms_stay_rare_when_whole_runs_shift():
    # Run effects (4%) the processes of one run cannot see, as on the shared development machine.
    runs = simulated_runs(40, run_sd=0.04, process_sd=0.02, seed=7)
    pairs = [(runs[j - 1], runs[j], runs[:j][::-1][:10]) for j in range(MIN_HISTORY, len(runs))] + \
            [(runs[j - 2], runs[j], runs[:j][::-1][:10]) for j in range(MIN_HISTORY, len(runs))]
    alarms = sum(judge(base, cont, "p50", history=past).outcome == "regression" for base, cont, past in pairs)
    assert alarms <= 1  # of 74 A/A pairs
    # What the same pairs raise when the run-to-run variation is not measured:
    assert sum(judge(base, cont, "p50").outcome == "regression" for base, cont, _ in pairs) >= 5
    assert sum(raw_sample_alarm(base, cont) for base, cont, _ in pairs) >= 8


def test_a_ten_percent_slowdown_is_found_on_a_quiet_machine_once_the_key_has_some_history():
    runs = simulated_runs(30, run_sd=0.01, process_sd=0.01, seed=3)
    verdicts = [
        judge(runs[j - 1], synthetic_record(f"slow-{j}", p50=runs[j].latency_ms.p50 * 1.10, process_sd=0.01,
                                            per_process=100, seed=5000 + j), "p50", history=runs[:j][::-1][:10])
        for j in range(MIN_HISTORY, len(runs))
    ]
    settled = [v for v in verdicts if v.significance.history_runs >= 6]
    assert sum(v.outcome == "regression" for v in settled) >= 0.9 * len(settled)
    # With 3 earlier runs the variance estimate has 2 degrees of freedom: only large changes stand out.
    assert verdicts[0].significance.detectable > 0.2


# Beside the verdict


def test_environment_differences_name_what_changed():
    before = synthetic_record(throttled=False)
    after = synthetic_record(
        env={**ENV, "host": "bench-b", "packages": {**ENV["packages"], "onnxruntime": "1.32.0"}},
        throttled=True,
        settings=before.settings.model_copy(update={"threads": 1}),
        backend_options={"intra_op_threads": 1},
    )
    assert environment_differences(before, after) == [
        "backend_options.intra_op_threads: (none) -> 1",
        "host: bench-a -> bench-b",
        "packages.onnxruntime: 1.31.1 -> 1.32.0",
        "settings.threads: 2 -> 1",
        "throttled: False -> True",
    ]
    assert environment_differences(before, synthetic_record(seed=9, throttled=False)) == []


# The store side


def fill_store(path, runs_spec, fields=None):
    """``runs_spec``: per run, (tags, [(backend, p50) or (backend, None) for a failed record]);
    ``fields``: per run, record fields to set (method, machine_id). Returns the run ids, oldest first."""
    ids = []
    with Store.open(path) as store:
        for index, (tags, records) in enumerate(runs_spec):
            run = store.create_run(host="bench-a", git_commit=f"c{index}", command=["edgebench", "run"], tags=tags)
            overrides = fields[index] if fields else {}
            for backend, p50 in records:
                if p50 is None:
                    record = synthetic_record(run.id, backend=backend, status="error", error="worker crashed",
                                              latency_ms=None, stability=None, samples_ms=[],
                                              created_at=run.started_at, **overrides)
                else:
                    record = synthetic_record(run.id, p50=p50, backend=backend, seed=index, **STEADY,
                                              created_at=run.started_at, **overrides)
                store.add_record(record)
            store.finish_run(run.id, "finished")
            ids.append(run.id)
    return ids


def outcomes(report):
    return {v.contender.backend: (v.outcome, v.baseline.run_id if v.baseline else None) for v in report.verdicts}


def test_default_baseline_is_each_keys_most_recent_earlier_run(tmp_path):
    path = tmp_path / "s.db"
    first, second, third, fourth = fill_store(path, [
        ({}, [("eager", 10.0), ("onnxruntime", 2.0)]),
        ({}, [("eager", 10.0)]),
        ({}, [("eager", 12.0), ("onnxruntime", 2.0), ("tensorrt", 1.0)]),
        ({}, [("eager", 30.0)]),  # later than the contender judged below: never a baseline
    ])
    with Store.open(path, create=False) as store:
        report = regress(store, contender_run=third)
    assert report.contender_run.id == third
    assert outcomes(report) == {
        "eager": ("regression", second),
        "onnxruntime": ("unchanged", first),
        "tensorrt": ("new", None),
    }
    assert report.failed
    eager = next(v for v in report.verdicts if v.contender.backend == "eager")
    assert eager.significance.history_runs == 2  # the first and second runs


def test_latest_run_is_the_default_contender_and_a_failed_measurement_fails(tmp_path):
    path = tmp_path / "s.db"
    fill_store(path, [({}, [("eager", 10.0), ("onnxruntime", 2.0)]), ({}, [("eager", 10.0), ("onnxruntime", None)])])
    with Store.open(path, create=False) as store:
        report = regress(store)
    assert outcomes(report)["onnxruntime"][0] == "failed"
    assert "ended error: worker crashed" in next(v.reason for v in report.verdicts if v.outcome == "failed")
    assert report.failed and report.counts()["failed"] == 1


def test_a_baseline_selector_picks_a_tagged_or_named_run(tmp_path):
    path = tmp_path / "s.db"
    tagged, _, contender = fill_store(path, [
        ({"nightly": "2026-11-20"}, [("eager", 10.0)]),
        ({}, [("eager", 12.0)]),
        ({}, [("eager", 12.0)]),
    ])
    with Store.open(path, create=False) as store:
        assert outcomes(regress(store))["eager"] == ("unchanged", _)
        assert outcomes(regress(store, baseline="tag:nightly=2026-11-20"))["eager"] == ("regression", tagged)
        prefix = unique_prefix(tagged, [run.id for run in store.runs()])
        assert outcomes(regress(store, baseline=f"run={prefix}"))["eager"] == ("regression", tagged)
        with pytest.raises(UsageError, match="matches no record; .*tags: nightly=2026-11-20"):
            regress(store, baseline="tag:nightly=2026-11-21")
        with pytest.raises(UsageError, match="matches no record"):  # the contender is never its own baseline
            regress(store, baseline=f"run={contender}")


PAIRED = {"method": "paired"}
SWEEP = {"method": "sweep"}


def test_a_paired_run_newer_than_a_sweep_run_is_not_judged_by_default(tmp_path):
    path = tmp_path / "s.db"
    first, first_prune, second, prune = fill_store(path, [
        ({}, [("eager", 10.0)]),
        ({}, [("eager", 20.0)]),  # a prune run between the sweeps: never a sweep's baseline
        ({}, [("eager", 10.0)]),
        ({}, [("eager", 20.0)]),  # the newest run, but a paired one
    ], fields=[SWEEP, PAIRED, SWEEP, PAIRED])
    with Store.open(path, create=False) as store:
        report = regress(store)
        assert (report.contender_run.id, report.method) == (second, "sweep")
        assert outcomes(report) == {"eager": ("unchanged", first)}
        assert report.verdicts[0].significance.history_runs == 1
        paired = regress(store, method="paired")
        assert paired.contender_run.id == prune
        assert outcomes(paired) == {"eager": ("unchanged", first_prune)}
        with pytest.raises(UsageError, match=f"run {prune} has no sweep records .*holds paired records"):
            regress(store, contender_run=prune)
        with pytest.raises(UsageError, match="--method sweep and selector 'method=paired' name two methods"):
            regress(store, baseline="method=paired", method="sweep")


def test_two_machines_sharing_a_target_name_keep_separate_histories(tmp_path):
    path = tmp_path / "s.db"
    one, two = {"machine_id": "1" * 16, "target": "x86-cpu"}, {"machine_id": "2" * 16, "target": "x86-cpu"}
    first_one, first_two, second_one, second_two = fill_store(path, [
        ({}, [("eager", 10.0)]), ({}, [("eager", 20.0)]), ({}, [("eager", 10.0)]), ({}, [("eager", 20.0)]),
    ], fields=[one, two, one, two])
    with Store.open(path, create=False) as store:
        assert outcomes(regress(store, contender_run=second_one)) == {"eager": ("unchanged", first_one)}
        assert outcomes(regress(store)) == {"eager": ("unchanged", first_two)}
        assert outcomes(regress(store, contender_run=first_two)) == {"eager": ("new", None)}


def test_regress_refuses_bad_input_with_what_exists(tmp_path):
    path = tmp_path / "s.db"
    Store.open(path).close()
    with Store.open(path, create=False) as store, pytest.raises(UsageError, match="has no runs"):
        regress(store)
    (run_id,) = fill_store(path, [({}, [("eager", 10.0)])])
    with Store.open(path, create=False) as store:
        with pytest.raises(UsageError, match=f"no run 'nope' in .*newest runs: {run_id}"):
            regress(store, contender_run="nope")
        with pytest.raises(UsageError, match="unknown metric 'p95'"):
            regress(store, metric="p95")
        with pytest.raises(UsageError, match="threshold is a fraction"):
            regress(store, threshold=-0.1)
        empty = store.create_run(host="h", git_commit=None, command=["edgebench"])
        with pytest.raises(UsageError, match="has no records to judge"):
            regress(store, contender_run=empty.id)

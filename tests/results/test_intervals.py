"""The p50 interval records show: worker processes counted, the samples' interval kept by name,
one-process records flagged, stored records of every schema version read the same way, and the
speedup interval compare decides with."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgebench.results.compare import pair
from edgebench.results.intervals import p50_interval
from edgebench.results.store import Store

from records import synthetic_record

DATA = Path(__file__).parent.parent / "data"
# Three invocations of ResNet-18 in eager on the development machine: p50s 29.1, 25.0 and 29.6 ms.
DISAGREEING = tuple(p50 / 29.1 for p50 in (29.1, 25.0, 29.6))


def test_processes_that_disagree_widen_the_interval_beyond_the_samples_one():
    record = synthetic_record(p50=29.1, process_factors=DISAGREEING, sample_sd=0.02, per_process=400)
    interval = p50_interval(record)
    assert interval.level == "processes" and interval.processes == 3
    assert interval.samples == tuple(record.latency_ms.ci95)
    # The premise: the samples' interval holds none but the middle process's p50.
    low, high = record.latency_ms.ci95
    assert sum(low <= p50 <= high for p50 in record.stability.process_p50s) <= 1
    assert interval.low < low and interval.high > high
    assert all(interval.low <= p50 <= interval.high for p50 in record.stability.process_p50s)
    assert interval.halfwidth > 5 * (high - low) / 2 / record.latency_ms.p50


def test_processes_that_agree_leave_the_samples_interval_and_one_process_is_flagged():
    agreeing = synthetic_record(p50=2.0, process_factors=(1.0, 1.0, 1.0), sample_sd=0.05)
    interval = p50_interval(agreeing)
    assert (interval.low, interval.high) == tuple(agreeing.latency_ms.ci95) and interval.level == "processes"

    single = synthetic_record(p50=2.0, processes=1, sample_sd=0.05)
    interval = p50_interval(single)
    assert (interval.low, interval.high) == tuple(single.latency_ms.ci95)
    assert (interval.level, interval.processes) == ("samples", 1)


def test_the_interval_covers_the_true_p50_as_stated_where_the_samples_one_does_not():
    # Each record: three processes, each shifted by its own 5% (log sd) state; the true p50 is 2.0.
    records = [synthetic_record(p50=2.0, process_sd=0.05, sample_sd=0.05, per_process=200, seed=seed)
               for seed in range(40)]
    covered = sum(p50_interval(r).low <= 2.0 <= p50_interval(r).high for r in records)
    by_samples = sum(r.latency_ms.ci95[0] <= 2.0 <= r.latency_ms.ci95[1] for r in records)
    assert covered >= 34  # 95% of 40 is 38
    assert by_samples <= 20


@pytest.mark.parametrize("fixture", sorted(path.name for path in DATA.glob("store-v*.db")))
def test_records_stored_by_every_schema_version_get_an_interval(fixture, tmp_path):
    path = tmp_path / fixture
    shutil.copy(DATA / fixture, path)
    with Store.open(path, create=False) as store:
        records = [r for r in store.records() if r.status == "ok"]
    assert records
    for record in records:
        interval = p50_interval(record)
        assert interval.low <= record.latency_ms.p50 <= interval.high
        assert interval.samples == tuple(record.latency_ms.ci95)
        assert interval.level == ("processes" if len(record.stability.process_p50s) > 1 else "samples")


def test_compare_calls_two_runs_of_one_setup_different_only_by_the_samples_interval():
    # Two records of the same setup: each run's processes agree within 2% but the runs sit 10% apart,
    # as separate invocations do on a shared machine.
    baseline = synthetic_record(p50=2.0, process_factors=(0.97, 1.0, 1.05), sample_sd=0.03, seed=1)
    contender = synthetic_record(p50=2.2, process_factors=(1.04, 1.0, 0.94), sample_sd=0.03, seed=2)
    compared = pair(baseline, contender, {})
    low, high = compared.speedup_ci_samples
    assert not low <= 1.0 <= high  # the premise: the samples alone call it a real difference
    assert compared.speedup_ci[0] <= 1.0 <= compared.speedup_ci[1]
    assert compared.interval == "processes"
    payload = compared.to_json_dict()
    assert payload["speedup_ci95"] == list(compared.speedup_ci)
    assert payload["speedup_ci95_samples"] == [low, high]
    assert payload["contender"]["p50_interval"] == "processes"
    assert payload["contender"]["p50_ci95_samples_ms"] == list(contender.latency_ms.ci95)
    json.dumps(payload)


def test_a_pair_of_one_process_records_keeps_the_bootstrap_and_says_so():
    baseline = synthetic_record(p50=2.0, processes=1, seed=1)
    contender = synthetic_record(p50=1.0, processes=1, seed=2)
    compared = pair(baseline, contender, {})
    assert compared.speedup_ci == compared.speedup_ci_samples and compared.interval == "samples"
    assert "baseline is one worker process: the interval covers its sample noise only" in compared.notes
    assert all(not math.isnan(bound) for bound in compared.speedup_ci)
    assert np.isclose(compared.speedup, 2.0, rtol=0.05)

"""Pairing records and the bootstrap interval of their speedup, on realistic raw samples."""

from __future__ import annotations

import math

import pytest

from edgebench.errors import UsageError
from edgebench.board import stats
from edgebench.results.compare import (
    compare,
    energy_ratio,
    latest_per_key,
    ratio_interval,
    varied_fields,
)
from edgebench.results.key import KEY_FIELDS
from edgebench.results.select import parse_selector

from records import synthetic_record


def test_key_fields_spell_out_record_key():
    record = synthetic_record()
    assert tuple(getattr(record, name) for name in KEY_FIELDS) == record.key


@pytest.mark.parametrize(("baseline", "contender", "varied"), [
    ("eager", "onnxruntime", ("backend",)),
    ("backend=eager", "onnxruntime,mode=15w", ("backend",)),  # mode named on one side only: stays in the key
    ("tensorrt,mode=maxn", "tensorrt,mode=15w", ("mode",)),   # the same backend on both sides is not varied
    ("run=A", "run=B", ()),
])
def test_varied_fields_are_those_both_selectors_name_differently(baseline, contender, varied):
    assert varied_fields(parse_selector(baseline), parse_selector(contender)) == varied


def test_speedup_pairs_backends_by_model_and_batch():
    eager = [synthetic_record(backend="eager", p50=20.0, batch=b, seed=b) for b in (1, 4)]
    ort = [synthetic_record(backend="onnxruntime", p50=4.0 * b, batch=b, seed=10 + b) for b in (1, 4)]
    result = compare(eager, ort, ("backend",))
    assert [(p.baseline.batch, p.contender.batch) for p in result.pairs] == [(1, 1), (4, 4)]
    first = result.pairs[0]
    assert first.speedup == pytest.approx(eager[0].latency_ms.p50 / ort[0].latency_ms.p50)
    assert first.speedup == pytest.approx(5.0, rel=0.02)
    low, high = first.speedup_ci
    assert low < first.speedup < high
    assert 4.9 < low and high < 5.1  # 1200 samples a side pin a 5x ratio to about +-1%
    assert result.pairs[1].speedup == pytest.approx(20.0 / 16.0, rel=0.02)
    assert result.unpaired == []
    assert "backend" not in first.key and first.key["batch"] == 1


def test_interval_covers_the_true_ratio_about_95_percent_of_the_time():
    # Both sides drawn from known distributions (true p50 ratio 1.2), 600-sample records, no process noise.
    covered = 0
    for seed in range(40):
        base = synthetic_record(p50=2.4, seed=2 * seed, sample_sd=0.1, per_process=200)
        cont = synthetic_record(p50=2.0, seed=2 * seed + 1, sample_sd=0.1, per_process=200)
        low, high = ratio_interval(base.samples_ms, cont.samples_ms, "p50")
        covered += low <= 1.2 <= high
    assert covered >= 34  # 95% nominal; 34/40 is far below what a correct interval gives by chance


def test_interval_of_large_records_narrows_with_the_square_root_of_n():
    # Beyond the 2000-sample cap the m-out-of-n bootstrap must still shrink as 1/sqrt(n).
    small = [synthetic_record(p50=2.0, per_process=800, seed=s) for s in (1, 2)]   # 2400 samples
    large = [synthetic_record(p50=2.0, per_process=3200, seed=s) for s in (3, 4)]  # 9600 samples
    widths = [math.log(high / low) for low, high in
              (ratio_interval(a.samples_ms, b.samples_ms, "p50") for a, b in (small, large))]
    assert widths[0] / widths[1] == pytest.approx(2.0, rel=0.25)


def test_ten_thousand_sample_records_give_a_tight_interval_around_no_change():
    # How fast this runs is a benchmark's question, not a test's: the test holds on a loaded machine.
    base = synthetic_record(per_process=3400, seed=1)
    cont = synthetic_record(per_process=3400, seed=2, backend="eager")
    (pair,) = compare([base], [cont], ("backend",)).pairs
    low, high = pair.speedup_ci
    assert low <= 1.0 <= high and low <= pair.speedup <= high
    assert high / low < 1.01  # 10,200 samples a side: the median ratio is known to well under 1%


def test_the_latest_record_of_a_key_wins_when_several_runs_match():
    old = synthetic_record("run-old", p50=3.0, created_at="2024-05-01T10:00:00+00:00")
    new = synthetic_record("run-new", p50=2.0, created_at="2024-05-02T10:00:00+00:00")
    assert latest_per_key([new, old], KEY_FIELDS)[new.key] is new
    eager = synthetic_record("run-new", backend="eager", p50=8.0)
    (pair,) = compare([eager], [old, new], ("backend",)).pairs
    assert pair.contender is new and pair.speedup == pytest.approx(4.0, rel=0.02)


def test_a_record_without_partner_says_which_fields_differ():
    base = [synthetic_record(backend="eager"), synthetic_record(backend="eager", model="torchvision:vgg16")]
    cont = [synthetic_record(backend="tensorrt", precision="fp16")]
    result = compare(base, cont, ("backend",))
    assert result.pairs == []
    reasons = {u.record.model: u.reason for u in result.unpaired if u.side == "baseline"}
    assert "differs in precision (fp32 vs fp16)" in reasons["torchvision:resnet18"]
    assert "model (torchvision:vgg16 vs torchvision:resnet18)" in reasons["torchvision:vgg16"]
    (contender_side,) = [u for u in result.unpaired if u.side == "contender"]
    assert "no baseline record with the same key" in contender_side.reason


def test_a_failed_measurement_is_reported_not_paired():
    failed = synthetic_record(backend="eager", status="error", error="worker crashed", latency_ms=None,
                              stability=None, samples_ms=[])
    result = compare([failed], [synthetic_record()], ("backend",))
    assert result.pairs == []
    assert [(u.side, u.reason) for u in result.unpaired] == [("baseline", "error: worker crashed")]


def test_selecting_the_same_records_on_both_sides_is_refused():
    record = synthetic_record()
    with pytest.raises(UsageError, match="name what differs"):
        compare([record], [record], ())


def test_energy_ratio_needs_energy_on_both_sides():
    base = synthetic_record(backend="eager", energy={"mj_per_inference": 30.0})
    cont = synthetic_record(energy={"mj_per_inference": 12.0})
    assert energy_ratio(base, cont) == pytest.approx(2.5)
    assert energy_ratio(base, synthetic_record()) is None
    assert compare([base], [cont], ("backend",)).pairs[0].energy_ratio == pytest.approx(2.5)


def test_disagreeing_processes_are_noted_beside_the_interval():
    steady = synthetic_record(backend="eager", seed=1)
    jumpy = synthetic_record(seed=2, process_sd=0.1)
    assert jumpy.stability.process_spread > stats.PROCESS_SPREAD_WARNING
    (pair,) = compare([steady], [jumpy], ("backend",)).pairs
    assert len(pair.notes) == 1 and pair.notes[0].startswith("contender worker processes disagree by")

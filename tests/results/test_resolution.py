"""Latency and frames per second against input shape: series of the key less the shape, smallest
input first, the latest record of each shape; and the comparison that keeps resolutions apart."""

from __future__ import annotations

import pytest

from edgebench.errors import UsageError
from edgebench.results.compare import compare
from edgebench.results.resolution import input_size, resolution_rows, resolution_series, swept_series

from records import synthetic_record

# (height, width), not in order: the series sort them. Milliseconds per pixel of each backend.
SIZES = ((512, 1024), (256, 512), (1024, 2048))
PER_PIXEL = {"eager": 2.0e-5, "onnxruntime": 1.2e-5}


def at(height: int, width: int, backend: str, seed: int = 0, **fields):
    p50 = PER_PIXEL[backend] * height * width
    return synthetic_record(p50=p50, backend=backend, seed=seed, input_shapes={"input0": [1, 3, height, width]},
                            throughput_ips=1000.0 / p50, **fields)


def swept(**fields):
    return [at(height, width, backend, seed=index, **fields)
            for index, (height, width) in enumerate(SIZES) for backend in PER_PIXEL]


def test_a_series_per_backend_smallest_input_first():
    series = resolution_series(swept())
    assert [[(r.backend, r.input_shape) for r in points] for points in series] == [
        [(backend, shape) for shape in ("3x256x512", "3x512x1024", "3x1024x2048")] for backend in PER_PIXEL]
    assert [input_size(r) for r in series[0]] == [3 * 256 * 512, 3 * 512 * 1024, 3 * 1024 * 2048]


def test_the_latest_record_of_a_shape_stands_for_it():
    older = at(256, 512, "eager", seed=9, run_id="20240430-120000-bbbbbb", created_at="2024-04-30T12:00:00+00:00")
    series = resolution_series([*swept(), older])
    assert older not in series[0] and len(series[0]) == 3


def test_rows_carry_p50_its_interval_and_frames_per_second():
    rows = resolution_rows(swept_series(swept()))
    assert len(rows) == 6
    for row in rows:
        assert row["p50_ci95_low_ms"] <= row["p50_ms"] <= row["p50_ci95_high_ms"]
        assert row["fps"] == pytest.approx(1000.0 / row["p50_ms"], rel=0.02)  # batch 1: frames = calls
    largest = rows[2]
    assert (largest["input_shape"], largest["backend"]) == ("3x1024x2048", "eager")
    assert largest["p50_ms"] == pytest.approx(2.0e-5 * 1024 * 2048, rel=0.02)


def test_records_at_one_shape_each_hold_no_sweep():
    with pytest.raises(UsageError, match=r"no resolution sweep in these records: .* --input-shape 3x256x512,3x512x1024"):
        swept_series([at(256, 512, "eager"), at(256, 512, "onnxruntime", seed=1)])


def test_compare_pairs_each_resolution_with_itself():
    records = swept()
    comparison = compare([r for r in records if r.backend == "eager"],
                         [r for r in records if r.backend == "onnxruntime"], ("backend",))
    assert [pair.key["input_shape"] for pair in comparison.pairs] == ["3x512x1024", "3x256x512", "3x1024x2048"]
    for pair in comparison.pairs:  # not a speedup across resolutions
        assert pair.speedup == pytest.approx(2.0 / 1.2, rel=0.03)
    lone = at(128, 256, "onnxruntime", seed=7)
    (unpaired,) = compare([records[0]], [lone], ("backend",)).unpaired[1:]
    assert "differs in input_shape (3x128x256 vs 3x512x1024)" in unpaired.reason

"""The report of a resolution sweep: latency and frames per second against input shape as a figure,
labels that tell the shapes apart, and no such section for a run at one shape per model."""

from __future__ import annotations

import re

import pytest

from edgebench.report.build import build_report
from edgebench.report.write import write_report
from edgebench.results.store import Store

from chromium import CHROMIUM, MISSING, rendered
from records import add_run, failed_record, synthetic_record

MODEL = "torchvision:lraspp_mobilenet_v3_large"
SHAPES = ((256, 512), (512, 1024), (768, 1536), (1024, 2048))
PER_PIXEL = {"eager": 2.0e-4, "onnxruntime": 1.1e-4}  # ms per pixel, batch 1


def sweep_run(run_id: str, started_at: str):
    """Both backends at every shape; ONNX Runtime at the largest failed."""
    records = []
    for index, (height, width) in enumerate(SHAPES):
        for backend, per_pixel in PER_PIXEL.items():
            fields = dict(model=MODEL, backend=backend, created_at=started_at,
                          input_shapes={"input0": [1, 3, height, width]})
            if (backend, height) == ("onnxruntime", 1024):
                records.append(failed_record(run_id, error="worker killed (out of memory)", **fields))
                continue
            p50 = per_pixel * height * width
            records.append(synthetic_record(run_id, p50, seed=index, throughput_ips=1000.0 / p50, **fields))
    return records


@pytest.fixture
def swept_page(tmp_path):
    """The report of the sweep run: its data and its page."""
    with Store.open(tmp_path / "s.db") as store:
        add_run(store, sweep_run)
        return build_report(store, tmp_path / "out"), write_report(store, tmp_path / "page")


def test_a_sweep_is_drawn_against_input_shape_with_its_failure_named(swept_page, tmp_path):
    data, index = swept_page
    (figure,) = data.figures["resolution"]
    assert (tmp_path / "out" / figure.file).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figure.title.startswith(f"{MODEL}, batch 1: latency and frames per second")
    assert figure.note == "Not measured: 3x1024x2048 onnxruntime (error)."
    # Labels tell the shapes apart; each shape pairs eager with ONNX Runtime at that shape only.
    assert {row.label for row in data.rows} >= {f"{MODEL} b1 3x256x512 eager", f"{MODEL} b1 3x768x1536 onnxruntime"}
    assert [pair.contender.input_shape for pair in data.pairs] == ["3x256x512", "3x512x1024", "3x768x1536"]
    page = index.read_text()
    section = page[page.index('<section id="resolution">'):page.index('<section id="speedup">')]
    assert re.search(r'<img src="fig-resolution-1\.png"', section) and "3x1024x2048 onnxruntime (error)" in section
    assert '<a href="#resolution">' in page


@pytest.mark.skipif(CHROMIUM is None, reason=MISSING)
def test_chromium_renders_the_resolution_section_and_loads_its_figure(swept_page, tmp_path):
    _, index = swept_page
    section_ids, images = rendered(index, tmp_path)
    assert "resolution" in section_ids
    (figure,) = [attrs for attrs in images if attrs.get("src") == "fig-resolution-1.png"]
    assert figure.get("data-loaded") == "true", images


def test_a_run_at_one_shape_per_model_has_no_resolution_section(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        add_run(store, lambda run_id, started_at: [
            synthetic_record(run_id, 2.0, backend=backend, seed=seed, created_at=started_at,
                             input_shapes={"input0": [1, 3, 224, 224]})
            for seed, backend in enumerate(PER_PIXEL)])
        page = write_report(store, tmp_path / "page").read_text()
    assert 'id="resolution"' not in page and not list((tmp_path / "page").glob("fig-resolution-*.png"))

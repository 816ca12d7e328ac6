"""``edgebench report``: the page of a realistic nightly store, checked in its data, its HTML and a real browser."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgebench.errors import UsageError
from edgebench.report.write import write_report
from edgebench.report.build import build_report
from edgebench.results.store import Store

from chromium import CHROMIUM, MISSING, rendered
from records import add_run, energy, failed_record, synthetic_record

# p50 in ms on an AGX Xavier at MAXN; 15 W runs them 1.6 times slower at about 60% of the power.
P50 = {"torchvision:resnet18": {"eager": 14.0, "onnxruntime": 9.0, "tensorrt": 3.1},
       "torchvision:mobilenet_v2": {"eager": 11.0, "onnxruntime": 4.2, "tensorrt": 1.4}}
MODES = {"maxn": (1.0, 21.0), "15w": (1.6, 12.5)}  # latency factor, watts while timing
NVPMODEL = {"maxn": "MAXN", "15w": "MODE_15W"}
BOARD = {"host": "xavier-01", "os": "Linux 5.10.120-tegra", "machine": "aarch64",
         "cpu_model": "ARMv8 Processor rev 0 (v8l)", "cpu_count": 8, "python": "3.10.12",
         "packages": {"torch": "2.1.0", "onnxruntime-gpu": "1.16.0", "tensorrt": "8.5.2.2"},
         "target": {"name": "xavier", "kind": "jetson"}, "jetson": {"release": "R35.4.1"}}
LIBRARIES = {"eager": ("torch", "2.1.0"), "onnxruntime": ("onnxruntime-gpu", "1.16.0"), "tensorrt": ("tensorrt", "8.5.2.2")}
RUN_DRIFT = (1.0, 1.015, 0.99, 1.005)  # the nightlies' run-to-run variation
WARNING = "CV 7.9% above 5%: the board was busy or throttling (see stability)"
FAILURE = "TensorRT build failed: <Myelin> out of memory"
SECTIONS = ("summary", "latency", "speedup", "energy", "history", "records", "environment")


def nightly(night: int, last: int):
    """One nightly run's records. The last night: onnxruntime resnet18 at MAXN 20% slower, eager
    mobilenet_v2 at MAXN with a warning, tensorrt mobilenet_v2 at 15 W failed."""
    def make(run_id: str, started_at: str):
        records = []
        for model_index, (model, backends) in enumerate(P50.items()):
            for mode, (slower, watts) in MODES.items():
                for backend_index, (backend, p50) in enumerate(backends.items()):
                    last_night = night == last
                    library, version = LIBRARIES[backend]
                    env = {**BOARD, "nvpmodel": {"name": NVPMODEL[mode]},
                           "backend": {"library": library, "version": version, "device": "cuda"}}
                    fields = dict(model=model, backend=backend, mode=mode, target="xavier", device="gpu",
                                  created_at=started_at, model_fingerprint=f"sha256:{model_index}", env=env)
                    if last_night and (model, backend, mode) == ("torchvision:mobilenet_v2", "tensorrt", "15w"):
                        records.append(failed_record(run_id, error=FAILURE, **fields))
                        continue
                    value = p50 * slower * RUN_DRIFT[night % len(RUN_DRIFT)]
                    if last_night and (model, backend, mode) == ("torchvision:resnet18", "onnxruntime", "maxn"):
                        value *= 1.2
                    warned = last_night and (model, backend, mode) == ("torchvision:mobilenet_v2", "eager", "maxn")
                    records.append(synthetic_record(
                        run_id, value, process_sd=0.003, sample_sd=0.04, per_process=300,
                        seed=100 * night + 10 * model_index + backend_index + (5 if mode == "15w" else 0),
                        energy=energy(watts, value), throughput_ips=1000.0 / value,
                        warnings=[WARNING] if warned else [], **fields))
        return records
    return make


@pytest.fixture(scope="module")
def nightly_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store") / "edgebench.db"
    with Store.open(path) as store:
        for night in range(4):
            add_run(store, nightly(night, last=3), host="xavier-01", git_commit=f"{night:x}" * 10,
                    tags={"nightly": f"2026-11-{20 + night}"}, env=BOARD)
    return path


@pytest.fixture(scope="module")
def report(nightly_store, tmp_path_factory):
    """The latest run's report, written by the command line, and its data."""
    out = tmp_path_factory.mktemp("report")
    result = edgebench("report", "--store", str(nightly_store), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"wrote {out / 'index.html'}; open it in a browser: file://" in result.stderr
    with Store.open(nightly_store, create=False) as store:
        data = build_report(store, tmp_path_factory.mktemp("scratch"))
    return out, data


def edgebench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgebench", *args], capture_output=True, text=True, timeout=300)


def row(data, model: str, backend: str, mode: str):
    (found,) = [r for r in data.rows if (r.record.model, r.record.backend, r.record.mode) == (model, backend, mode)]
    return found


def test_the_slower_key_is_a_regression_and_the_steady_ones_are_not(report):
    _, data = report
    regressed = row(data, "torchvision:resnet18", "onnxruntime", "maxn").step
    assert regressed.outcome == "regression"
    assert regressed.change == pytest.approx(0.2 * 1.005 / 0.99, abs=0.02)
    assert regressed.previous.run_id != regressed.record.run_id
    steady = [r.step for r in data.rows if r.step and r.step is not regressed]
    assert {step.outcome for step in steady} == {"unchanged"} and len(steady) == 10
    assert data.count("regression") == 1 and data.history_runs == 4


def test_speedups_are_over_eager_with_intervals_and_the_failure_is_unpaired(report):
    _, data = report
    assert data.baseline_backend == "eager"
    assert len(data.pairs) == 7  # 2 models x 2 modes x 2 other backends, less the failed measurement
    tensorrt = row(data, "torchvision:resnet18", "tensorrt", "15w").pair
    assert tensorrt.speedup == pytest.approx(14.0 / 3.1, rel=0.03)
    assert tensorrt.speedup_ci[0] < tensorrt.speedup < tensorrt.speedup_ci[1]
    assert tensorrt.energy_ratio == pytest.approx(14.0 / 3.1, rel=1e-9)  # same watts: energy follows latency
    (failed,) = data.unpaired
    assert failed.record.status == "error" and FAILURE in failed.reason


def test_the_page_shows_warnings_and_errors_beside_the_numbers(report):
    out, data = report
    page = (out / "index.html").read_text()
    records = page[page.index('id="records"'):page.index('id="environment"')]
    rows = re.findall(r'<tr class="([^"]*)">(.*?)</tr>', records, flags=re.S)
    by_label = {re.match(r"\s*<td>(.*?)</td>", body).group(1): (index, kind)
                for index, (kind, body) in enumerate(rows) if "details" not in kind.split()}
    # The warned record: its p50 marked, its warning in the row right under the numbers.
    index, kind = by_label["torchvision:mobilenet_v2 b1 eager maxn"]
    assert kind == "warned has-details" and "&#9888;</span> 11.0" in rows[index][1]
    assert rows[index + 1][0] == "warned details" and WARNING in rows[index + 1][1]
    index, kind = by_label["torchvision:mobilenet_v2 b1 tensorrt 15w"]
    assert kind == "failed has-details" and ">error<" in rows[index][1]
    assert "&lt;Myelin&gt; out of memory" in rows[index + 1][1] and "<Myelin>" not in page  # escaped, not markup
    index, kind = by_label["torchvision:resnet18 b1 onnxruntime maxn"]
    assert ">regression</span>" in rows[index][1]
    assert re.search(r"regression: p50 \d\.\d+ -&gt; \d+\.\d+ ms \(\+2\d\.\d%\), p = ", rows[index + 1][1])
    # A steady record has no details row.
    index, kind = by_label["torchvision:resnet18 b1 eager maxn"]
    assert kind == "" and ">unchanged</span>" in rows[index][1] and "details" not in rows[index + 1][0].split()
    assert "1 record(s) carry warnings" in page
    assert "Regression: <b>torchvision:resnet18 b1 onnxruntime maxn</b>" in page
    environment = page[page.index('id="environment"'):]
    for text in ("<td>xavier-01</td>", "ARMv8 Processor rev 0 (v8l)", "<td>packages.tensorrt</td><td>8.5.2.2</td>",
                 "nightly=2026-11-23", "<td>mode</td><td>maxn | 15w</td>", "<td>MAXN | MODE_15W</td>",
                 "<td>backend onnxruntime</td><td>library=onnxruntime-gpu, version=1.16.0, device=cuda</td>"):
        assert text in environment
    assert environment.count("<td>host</td>") == 1


def test_every_figure_is_a_png_beside_the_page_and_nothing_is_fetched(report):
    out, data = report
    page = (out / "index.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(images) == sorted(path.name for path in out.glob("*.png"))
    assert len(images) == 2 + 1 + 1 + 2  # latency per model, speedup, energy, history per model
    for name in images:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"(src|href)=\"(https?:)?//", page)


@pytest.mark.skipif(CHROMIUM is None, reason=MISSING)
def test_chromium_renders_every_section_and_loads_every_image(report, tmp_path):
    out, _ = report
    section_ids, images = rendered(out / "index.html", tmp_path)
    assert set(SECTIONS) <= set(section_ids)
    assert len(images) == 6
    assert all(attrs.get("data-loaded") == "true" for attrs in images), images


def test_an_earlier_run_by_prefix_has_its_own_history(nightly_store, tmp_path):
    with Store.open(nightly_store, create=False) as store:
        second = store.runs()[-2]
        data = build_report(store, tmp_path, second.id[:-2])
    assert data.run.id == second.id and data.history_runs == 2
    assert {r.step.outcome for r in data.rows} == {"unchanged"}
    assert not data.failed and not data.warned


def test_a_first_run_has_no_history_and_old_figures_are_removed(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "fig-history-3.png").write_bytes(b"stale")
    with Store.open(tmp_path / "one.db") as store:
        add_run(store, nightly(0, last=9))
        index = write_report(store, out)
    page = index.read_text()
    assert "No earlier run measured these keys" in page
    assert not (out / "fig-history-3.png").exists() and not list(out.glob("fig-history-*.png"))
    assert page.count('<span class="">new</span>') == 12  # every record's key is new


def test_a_store_without_runs_is_a_one_line_usage_error(tmp_path):
    empty = tmp_path / "empty.db"
    Store.open(empty).close()
    result = edgebench("report", "--store", str(empty), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"edgebench: error: the store {empty} has no runs "
                                                  "(`edgebench run` adds them)"]
    with Store.open(empty) as store:
        store.create_run(host="h", git_commit=None, command=["edgebench", "run"])
        with pytest.raises(UsageError, match="has no records to report"):
            write_report(store, tmp_path / "out")


def test_a_newer_prune_run_is_neither_the_reported_run_nor_a_point_of_the_history(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        add_run(store, nightly(0, last=9), env=BOARD)
        second = add_run(store, nightly(1, last=9), env=BOARD)
        prune = add_run(store, lambda run_id, started_at: [
            synthetic_record(run_id, 5.0, method="paired", created_at=started_at)], env=BOARD)
        data = build_report(store, tmp_path / "out")
        assert data.run.id == second.id and data.history_runs == 2
        assert ("method", "sweep") in data.environment
        assert ("machine", data.rows[0].record.machine_id[:8]) in data.environment
        paired = build_report(store, tmp_path / "paired", method="paired")
        assert (paired.run.id, [r.record.method for r in paired.rows]) == (prune.id, ["paired"])
        with pytest.raises(UsageError, match=f"run {prune.id} has no sweep records .*holds paired records"):
            build_report(store, tmp_path / "out", prune.id)

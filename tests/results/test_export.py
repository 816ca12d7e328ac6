"""The DataFrame API and csv / parquet / json exports, read from a copy of the v1 fixture."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from edgebench.errors import UsageError
from edgebench.results import load_dataframe
from edgebench.results.export import export_records
from edgebench.results.frame import record_columns
from edgebench.results.record import Record
from edgebench.results.store import Store

FIXTURE_SAMPLES = [2.5, 2.25, 2.75, 2.5, 3.125, 2.375]


@pytest.fixture
def store(store_path):
    with Store.open(store_path, create=False) as opened:
        yield opened


def empty_run_id(store: Store) -> str:
    return store.create_run(host="h", git_commit=None, command=["edgebench", "run"]).id


# DataFrame


def test_dataframe_has_one_flattened_row_per_record(store_path):
    frame = load_dataframe(store_path)
    ok, error = frame.to_dict("records")
    assert list(frame.columns) == record_columns() + ["tag.purpose"]
    assert (ok["model"], ok["status"], ok["batch"]) == ("torchvision:resnet18", "ok", 1)
    assert (ok["latency_ms.p50"], ok["latency_ms.p99"]) == (2.5, 3.1)
    assert (ok["latency_ms.ci95_low"], ok["latency_ms.ci95_high"]) == (2.375, 2.75)
    assert (ok["stability.stop_reason"], ok["settings.threads"]) == ("max_time", 4)
    assert ok["memory_mb.host_peak"] == 310.5
    assert json.loads(ok["input_shapes"]) == {"input": [1, 3, 224, 224]}
    assert ok["warning_count"] == 1
    assert (ok["run.host"], ok["run.status"]) == ("bench-host", "finished")
    assert ok["tag.purpose"] == "fixture"
    assert error["status"] == "error" and "HardSwish" in error["error"]
    assert pd.isna(error["latency_ms.p50"])
    assert "samples_ms" not in frame.columns


def test_every_record_field_has_a_column():
    columns = record_columns()
    for field in Record.model_fields:
        if field != "samples_ms":
            covered = [column for column in columns if column.split(".")[0] == field]
            assert covered, f"Record.{field} has no DataFrame column"


def test_dataframe_selects_a_run_by_prefix_and_can_carry_samples(store, store_path):
    run_id = store.latest_run_id()
    other = empty_run_id(store)
    frame = load_dataframe(store_path, run_id=run_id[:-2], with_samples=True)
    assert set(frame["run_id"]) == {run_id}
    assert frame["samples_ms"].tolist() == [FIXTURE_SAMPLES, []]
    assert load_dataframe(store_path, run_id=other).empty


def test_dataframe_reads_the_default_store_location(store_path, tmp_path, monkeypatch):
    (tmp_path / "results").mkdir()
    store_path.rename(tmp_path / "results" / "edgebench.db")
    monkeypatch.chdir(tmp_path)
    assert len(load_dataframe()) == 2


def test_dataframe_of_a_missing_store_is_an_error_and_creates_nothing(tmp_path):
    with pytest.raises(UsageError, match="no results store"):
        load_dataframe(tmp_path / "absent.db")
    assert not (tmp_path / "absent.db").exists()


# Exports


def test_csv_export_is_the_flattened_frame_without_samples(store, tmp_path):
    out = tmp_path / "new" / "dir" / "records.csv"  # missing directories are created
    assert export_records(store, "csv", out) == 2
    frame = pd.read_csv(out)
    assert list(frame.columns) == record_columns() + ["tag.purpose"]
    assert frame["model"].tolist() == ["torchvision:resnet18", "torchvision:mobilenet_v3_small"]
    assert frame.loc[0, "latency_ms.p50"] == 2.5
    assert "samples_ms" not in frame.columns


def test_parquet_export_keeps_samples_as_a_list_column(store, tmp_path):
    out = tmp_path / "records.parquet"
    assert export_records(store, "parquet", out) == 2
    frame = pd.read_parquet(out)
    assert [list(samples) for samples in frame["samples_ms"]] == [FIXTURE_SAMPLES, []]
    assert frame.loc[0, "latency_ms.ci95_high"] == 2.75
    assert frame["status"].tolist() == ["ok", "error"]


def test_json_export_is_the_list_of_full_records(store, tmp_path):
    out = tmp_path / "records.json"
    assert export_records(store, "json", out) == 2
    exported = [Record.model_validate(item) for item in json.loads(out.read_text())]
    assert exported == store.records()
    assert exported[0].samples_ms == FIXTURE_SAMPLES


def test_export_selects_one_run(store, tmp_path):
    run_id = store.latest_run_id()
    empty = empty_run_id(store)
    assert export_records(store, "json", tmp_path / "one.json", run_id=run_id[:-2]) == 2
    assert export_records(store, "json", tmp_path / "none.json", run_id=empty) == 0


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_an_empty_selection_writes_a_valid_empty_file(store, tmp_path, fmt):
    out = tmp_path / f"empty.{fmt}"
    assert export_records(store, fmt, out, run_id=empty_run_id(store)) == 0
    if fmt == "csv":
        frame = pd.read_csv(out)
        assert frame.empty and list(frame.columns) == record_columns()
    elif fmt == "parquet":
        frame = pd.read_parquet(out)
        assert frame.empty and "latency_ms.p50" in frame.columns
    else:
        assert json.loads(out.read_text()) == []


def test_an_unknown_format_is_refused_before_writing(store, tmp_path):
    with pytest.raises(UsageError, match="unknown export format 'xlsx'; choose one of csv"):
        export_records(store, "xlsx", tmp_path / "out" / "records.xlsx")
    assert not (tmp_path / "out").exists()

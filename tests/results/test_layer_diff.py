"""Two per-layer profiles joined by module (``results/layer_diff.py``) and ``edgebench results layers``."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import edgebench.cli.results  # noqa: F401  (registers the sub-commands on app)
from edgebench.cli.app import app
from edgebench.errors import UsageError
from edgebench.results.layer_diff import diff_profiles, module_times, profiled_record
from edgebench.results.store import Store
from records import add_run, failed_record, synthetic_record

runner = CliRunner(env={"COLUMNS": "200"})


def row(module, ms, layer=None):
    return {"layer": layer or module, "module": module, "type": "Conv", "onnx_nodes": [], "calls": 1, "runs": 10,
            "median_ms": ms, "mean_ms": ms, "share": None}


DENSE = [row("conv1", 1.0), row("layer1.0.conv1", 4.0), row("layer1.0.conv2", 3.0), row("fc", 0.5)]
PRUNED = [row("conv1", 1.0), row("layer1.0.conv1", 1.0), row("layer1.0.conv2", 2.5), row("extra", 0.2)]
for dense_row in DENSE:
    dense_row["share"] = dense_row["median_ms"] / 8.5


def test_the_diff_joins_modules_and_sorts_by_absolute_change():
    diff = diff_profiles(DENSE, PRUNED)
    assert [(c.module, c.a_ms, c.b_ms, c.change_ms, c.only_in) for c in diff.modules] == [
        ("layer1.0.conv1", 4.0, 1.0, -3.0, None), ("layer1.0.conv2", 3.0, 2.5, -0.5, None),
        ("fc", 0.5, None, -0.5, "A"), ("extra", None, 0.2, 0.2, "B"), ("conv1", 1.0, 1.0, 0.0, None)]
    assert (diff.total_a_ms, diff.total_b_ms) == (8.5, 4.7)
    first = diff.modules[0]
    assert first.ratio == 0.25 and first.a_share == pytest.approx(4 / 8.5) and first.b_share == pytest.approx(1 / 4.7)
    assert diff.modules[2].ratio is None and diff.modules[2].b_share is None


def test_depth_joins_modules_by_their_first_parts_and_unmapped_rows_keep_their_layer():
    rows = DENSE + [row(None, 0.25, layer="ReorderOutput")]
    assert module_times(rows, depth=1) == {"conv1": 1.0, "layer1": 7.0, "fc": 0.5, "ReorderOutput": 0.25}
    with pytest.raises(UsageError, match="--depth"):
        diff_profiles(DENSE, PRUNED, depth=0)


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "store.db"
    with Store.open(path) as opened:
        profiled = add_run(opened, lambda run_id, _: [
            synthetic_record(run_id, layer_profile=DENSE),
            synthetic_record(run_id, model="pruned", layer_profile=PRUNED),
            synthetic_record(run_id, backend="eager", warnings=["--profile-layers: per-layer profiling failed: X"]),
            failed_record(run_id)])
        single = add_run(opened, lambda run_id, _: [synthetic_record(run_id, layer_profile=DENSE),
                                                    synthetic_record(run_id)])
    return path, profiled.id, single.id


def invoke(*args):
    return runner.invoke(app, ["results", "layers", *args])


def test_a_record_is_named_by_run_and_position(store):
    path, profiled, single = store
    with Store.open(path, create=False) as opened:
        name, record = profiled_record(opened, f"{profiled}:2")
        assert (name, record.model) == (f"{profiled}:2", "pruned")
        assert profiled_record(opened, single)[0] == f"{single}:1"  # its one profiled record


@pytest.mark.parametrize("reference, message", [
    ("nosuchrun:1", "no run 'nosuchrun'"),
    ("{profiled}:9", "has records :1 to :4, not :9"),
    ("{profiled}:x", "not :x"),
    ("{profiled}:3", "has no layer profile (--profile-layers: per-layer profiling failed: X)"),
    ("{profiled}:4", "has no layer profile; measure with `edgebench run --profile-layers`"),
    ("{profiled}", "holds 2 records with a layer profile ({profiled}:1 torchvision:resnet18 onnxruntime"),
])
def test_bad_record_names_are_one_line_usage_errors(store, reference, message):
    path, profiled, _ = store
    result = invoke(reference.format(profiled=profiled), "--store", str(path))
    assert isinstance(result.exception, UsageError), result.output  # one line and exit 2 (cli/app.py)
    assert message.format(profiled=profiled) in str(result.exception) and "\n" not in str(result.exception)


def test_one_record_shows_its_rows(store):
    path, profiled, _ = store
    result = invoke(f"{profiled}:1", "--store", str(path))
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if "layer1.0.conv1" in line)
    assert "4.000" in line and "47.1%" in line  # 4.0 of 8.5 ms
    as_json = invoke(f"{profiled}:1", "--store", str(path), "--json")
    assert json.loads(as_json.stdout) == DENSE


def test_two_records_are_diffed_as_a_table_and_as_json(store):
    path, profiled, _ = store
    table = invoke(f"{profiled}:1", f"{profiled}:2", "--store", str(path))
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    first = next(index for index, line in enumerate(lines) if "layer1.0.conv1" in line)
    assert "-3.000" in lines[first] and "0.25" in lines[first]
    assert "only in A" in next(line for line in lines if " fc " in line)
    assert "only in B" in next(line for line in lines if "extra" in line)
    result = invoke(f"{profiled}:1", f"{profiled}:2", "--store", str(path), "--json", "--depth", "1")
    payload = json.loads(result.stdout)
    assert (payload["a"], payload["b"]) == (f"{profiled}:1", f"{profiled}:2")
    assert [(m["module"], m["change_ms"]) for m in payload["modules"]][:1] == [("layer1", -3.5)]

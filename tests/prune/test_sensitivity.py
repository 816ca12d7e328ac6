"""`edgebench sensitivity` and `edgebench prune --allocate sensitivity`: the allocation rule on a
hand-written table, and the whole path on a tiny model trained on the digits, every candidate
measured in real paired eager worker processes, records in a real store."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
import sys

import pytest

from edgebench.prune.sensitivity import AA_NOTE
from edgebench.prune.sensitivity_allocation import allocate
from edgebench.prune.sensitivity_table import CSV_NAME, read_points
from edgebench.results.store import Store
from support_path import with_support

# Candidates are pickled worker_models modules: the workers import them too.
WORKER_PATH = with_support()
MODEL = "worker_models:tiny?channels=16"
TASK = "digits?size=16"
GROUPS = ["features.0", "features.2"]  # the two convolutions; the head is an output layer, kept
MEASURE = ["--train-steps", "20", "--round-to", "4", "--rounds", "2", "--block-time", "0.02", "--threads", "1"]

# Group a loses much accuracy for little latency, b little for much; c saves nothing measurable.
HAND_WRITTEN = """\
group,sparsity,channels_before,channels_after,macs,params,metric,metric_value,metric_drop,eager_latency_ms,eager_ratio,eager_ratio_low,eager_ratio_high,note
a,0,32,32,100,10,accuracy,0.9,0,1.0,1.0,0.98,1.02,unpruned
a,0.5,32,16,80,8,accuracy,0.6,0.3,0.9,0.9,0.88,0.92,
b,0,64,64,100,10,accuracy,0.9,0,1.0,1.01,0.99,1.03,unpruned
b,0.25,64,48,90,9,accuracy,0.89,0.01,0.8,0.8,0.78,0.82,
b,0.5,64,32,70,7,accuracy,0.85,0.05,0.7,0.7,0.68,0.72,
c,0,8,8,100,10,accuracy,0.9,0,1.0,0.99,0.97,1.01,unpruned
c,0.5,8,4,95,9,accuracy,0.9,0.0,1.0,1.02,0.99,1.05,
"""


def hand_points(tmp_path):
    path = tmp_path / CSV_NAME
    path.write_text(HAND_WRITTEN)
    return read_points(path, rounds=10)


def test_the_least_sensitive_cut_goes_first_and_the_prediction_stops_at_the_budget(tmp_path):
    backends, points = hand_points(tmp_path)
    assert backends == ["eager"] and len(points) == 7
    # b at 0.25 costs 0.05 of accuracy per unit of latency saved, the cheapest; 0.8 meets a budget of 0.85.
    first = allocate(points, backends, 0.85)
    assert {group: point.sparsity for group, point in first.chosen.items()} == {"b": 0.25}
    assert first.reached and first.predicted["eager"] == pytest.approx(0.8)
    # Deeper: b to 0.5 (0.04 more for 0.1 more saved: 0.4 per unit) before a (0.3 for 0.1: 3 per unit).
    second = allocate(points, backends, 0.7)
    assert {group: point.sparsity for group, point in second.chosen.items()} == {"b": 0.5}
    assert len(second.steps) == 2 and second.steps[0].startswith("b at sparsity 0.25")
    assert second.predicted["eager"] == pytest.approx(0.7) and second.predicted_drop == pytest.approx(0.05)
    # Then a; c's cut measured slower and is never taken, so 0.5 is out of reach.
    third = allocate(points, backends, 0.5)
    assert {group: point.sparsity for group, point in third.chosen.items()} == {"b": 0.5, "a": 0.5}
    assert not third.reached and third.predicted["eager"] == pytest.approx(0.6)
    assert third.predicted["eager"] > 0.5  # the premise of "out of reach"


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """One sensitivity analysis of both groups at 0.5 (in this process, as the ``cli`` fixture runs
    the command), its run in a store of its own; returns its directory, stdout and stderr."""
    from edgebench.cli.main import main

    where = tmp_path_factory.mktemp("sensitivity")
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        # The baseline is trained into the cache the other tests share (conftest's isolated_cache).
        patch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "edgebench-cache"))
        patch.setenv("PYTHONPATH", WORKER_PATH)
        patch.chdir(where)
        patch.setattr(sys, "argv", ["edgebench", "sensitivity", "--model", MODEL, "--task", TASK, "--sparsities", "0.5",
                                    "--store", "results.db", "--out", "out", "--tag", "study=tiny", *MEASURE])
        with pytest.raises(SystemExit) as exited:
            main()
    assert not exited.value.code, stderr.getvalue()
    return where, stdout.getvalue(), stderr.getvalue()


def test_each_group_is_cut_alone_and_measured_against_the_unpruned_model(analysed):
    where, stdout, stderr = analysed
    out = where / "out"
    with open(out / CSV_NAME, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(row["group"], row["sparsity"]) for row in rows] == [(g, s) for g in GROUPS for s in ("0", "0.5")]
    report = json.loads((out / "report.json").read_text())
    assert report["complete"] and report["measured_groups"] == GROUPS and report["criterion"] == "l1"
    assert (report["task"], report["backends"], report["sparsities"]) == (TASK, ["eager"], [0.0, 0.5])
    for row in rows:
        assert row["metric"] == "accuracy" and float(row["eager_ratio_low"]) <= float(row["eager_ratio_high"])
        if row["sparsity"] == "0":  # the unpruned model itself: its metric is the baseline's, its ratio A/A
            assert float(row["metric_value"]) == pytest.approx(report["baseline"]["metric"], abs=1e-6)
            assert (row["channels_after"], row["metric_drop"], row["note"]) == ("16", "0", AA_NOTE)
        else:
            assert row["channels_after"] == "8" and int(row["macs"]) < report["baseline"]["macs"]
    assert {path.name for path in out.iterdir()} == {CSV_NAME, "report.json", "sensitivity.png",
                                                     "group-features.0.png", "group-features.2.png"}
    assert "group 2/2 features.2:" in stderr and "ratio at 0.5" in stdout
    with Store.open(where / "results.db", create=False) as store:
        [run] = store.runs()
        records = [record.to_json_dict(with_samples=False) for record in store.records()]
    assert run.tags == {"command": "sensitivity", "study": "tiny"}
    # Per group: the unpruned model, its copy (the A/A pair) and the cut, all paired.
    labels = sorted((r["env"]["sensitivity"]["group"], r["env"]["sensitivity"]["sparsity"],
                     r["env"]["sensitivity"]["role"]) for r in records)
    assert labels == sorted((g, s, role) for g in GROUPS for s, role in
                            ((0.0, "unpruned"), (0.0, "unpruned copy (A/A)"), (0.5, "candidate")))
    assert {r["method"] for r in records} == {"paired"}


def test_bad_sensitivity_options_are_one_line_and_exit_2(cli, tmp_path):
    for args, message in ((["--sparsities", "1"], "--sparsities must be in [0, 1), not 1"),
                          (["--sparsities", "half"], "--sparsities takes numbers, not 'half'"),
                          (["--groups", "features.1"], "--groups: features.1 is not a prunable group of this "
                                                       "model; its groups: features.0, features.2")):
        proc = cli("sensitivity", "--model", MODEL, "--task", TASK, "--out", str(tmp_path / "o"), *args)
        assert proc.returncode == 2, proc.stderr
        [line] = proc.stderr.strip().splitlines()
        assert line == f"edgebench: error: {message}"
    assert not (tmp_path / "o").exists()


def allocate_cli(cli, sensitivity, *args):
    return cli("prune", "--model", MODEL, "--task", TASK, "--strategy", "allocate", "--allocate", "sensitivity",
               "--sensitivity", str(sensitivity), "--out", "pruned", *args)


def test_an_analysis_of_another_model_task_or_groups_is_refused_in_one_line(analysed, cli, tmp_path):
    where = analysed[0]
    foreign = tmp_path / "foreign"
    shutil.copytree(where / "out", foreign)
    table = foreign / CSV_NAME
    table.write_text(table.read_text().replace("features.2,", "features.9,"))
    for sensitivity, args, message in (
            (where / "out", ["--task", "digits?size=16&seed=1"], "was measured on task digits?size=16, not digits"),
            (where / "out", ["--model", "worker_models:tiny?channels=24"], "was measured on another model"),
            (where / "out", ["--criterion", "hrank"], "cut the channels by l1, not hrank"),
            (foreign, [], "names group(s) this model does not have: features.9"),
            (tmp_path, [], "no report.json")):
        proc = allocate_cli(cli, sensitivity, *args)
        assert proc.returncode == 2, proc.stderr
        [line] = proc.stderr.strip().splitlines()
        assert line.startswith("edgebench: error: --sensitivity ") and message in line, line
    assert not (tmp_path / "pruned").exists()


def test_the_allocated_cut_follows_the_table_and_is_measured_beside_its_prediction(analysed, cli, tmp_path,
                                                                                   monkeypatch):
    where = analysed[0]
    monkeypatch.setenv("PYTHONPATH", WORKER_PATH)
    # The measured analysis with its cuts' ratios set by hand, so what the allocation takes is known:
    # features.0 at 0.5 saves 40%, features.2 at 0.5 measured slower.
    table = tmp_path / "table"
    shutil.copytree(where / "out", table)
    with open(table / CSV_NAME, newline="") as stream:
        rows = list(csv.DictReader(stream))
    for row in rows:
        if row["sparsity"] == "0.5":
            row["eager_ratio"] = "0.6" if row["group"] == "features.0" else "1.05"
    with open(table / CSV_NAME, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    proc = allocate_cli(cli, table, "--budget", "0.7", "--finetune-steps", "0", "--final-finetune-steps", "0",
                        "--store", "results.db", "--json", *MEASURE)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    allocation = report["allocation"]
    assert allocation["reached"] and allocation["predicted_ratio"] == {"eager": pytest.approx(0.6)}
    assert [(group["group"], group["channels"]) for group in allocation["groups"]] == [("features.0", [16, 8])]
    [step] = report["steps"]
    assert report["strategy"] == "allocate" and step["verdict"] == "kept" and step["channels"] == [16, 8]
    assert allocation["measured_ratio"]["eager"] == report["final"]["latency_ratio"]["eager"]["ratio"] > 0
    assert "allocation: predicted eager 0.600x; measured eager" in " ".join(proc.stderr.split())
    # The baseline was the analysis's (its trained weights are checked against the table's).
    baseline = json.loads((where / "out" / "report.json").read_text())["baseline"]
    assert report["baseline"]["accuracy"] == pytest.approx(baseline["metric"])


def test_allocation_options_out_of_place_are_one_line_and_exit_2(cli, tmp_path):
    for args, message in ((["--allocate", "sensitivity"], "--allocate applies to --strategy allocate only"),
                          (["--strategy", "allocate", "--sensitivity", "."], "--allocate sensitivity and "
                                                                             "--sensitivity DIR go together"),
                          (["--strategy", "allocate", "--allocate", "sensitivity", "--sensitivity", ".",
                            "--ratio", "0.5"], "--ratio applies to --strategy static only")):
        proc = cli("prune", "--model", MODEL, "--task", TASK, "--out", str(tmp_path / "o"), *args)
        assert proc.returncode == 2, proc.stderr
        [line] = proc.stderr.strip().splitlines()
        assert line == f"edgebench: error: {message}"

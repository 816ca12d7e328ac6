"""`edgebench sensitivity --mode A,B`: every group's latency measured in each power mode, the metric
taken once, and `prune --allocate sensitivity` allocating by one mode's rows.

EMULATED HARDWARE: the Jetson here is tests/support/fake_jetson.py's AGX Xavier (a fake nvpmodel
that records the modes asked for, and changes nothing else). The latencies are this CPU's in
every "mode": the tests check that each mode gets its rows, its stage and its records and that
the mode is put back, never what a mode does to a cut. The model, the training, the eager workers
and the store run for real.
"""

from __future__ import annotations

import csv
import json

import pytest

from edgebench.errors import UsageError
from edgebench.prune.sensitivity_table import CSV_NAME, in_mode, load_sensitivity
from edgebench.results.store import Store
from fake_jetson import make_emulated_jetson
from support_path import with_support

MODEL = "worker_models:tiny?channels=16"
TASK = "digits?size=16"
ANALYSE = ["--model", MODEL, "--task", TASK, "--groups", "features.0", "--sparsities", "0.5", "--target", "xavier",
           "--device", "cpu", "--train-steps", "20", "--round-to", "4", "--rounds", "2", "--block-time", "0.02",
           "--threads", "1"]
XAVIER_MODES = "maxn, 10w, 15w, 30w-all, 30w-6core, 30w-4core, 30w-2core, 15w-desktop"


@pytest.fixture
def xavier(tmp_path, monkeypatch):
    """The emulated AGX Xavier as this machine, for this process and its workers (which import the
    pickled worker_models candidates)."""
    board = make_emulated_jetson(tmp_path / "board", "xavier")
    for name, value in board.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PYTHONPATH", with_support())
    return board


def test_each_mode_measures_every_group_and_the_mode_is_put_back(xavier, cli, tmp_path):
    proc = cli("sensitivity", *ANALYSE, "--mode", "maxn,30w-all", "--out", "out", "--store", "results.db")
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "out" / CSV_NAME, newline="") as stream:
        rows = list(csv.DictReader(stream))
    # Mode after mode: one stage each, every group measured in it.
    assert [(row["mode"], row["group"], row["sparsity"]) for row in rows] == [
        (mode, "features.0", sparsity) for mode in ("maxn", "30w-all") for sparsity in ("0", "0.5")]
    for sparsity in ("0", "0.5"):  # the metric was taken once: the same in both modes
        values = {row["metric_value"] for row in rows if row["sparsity"] == sparsity}
        assert len(values) == 1, values
    for row in rows:
        assert float(row["eager_latency_ms"]) > 0 and float(row["eager_ratio_low"]) <= float(row["eager_ratio_high"])
    # maxn (id 0) and 30w-all (id 3), each put back to MODE_15W (id 2), which the board is in again.
    assert xavier.state()["history"] == [0, 2, 3, 2] and xavier.state()["mode"] == 2
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (report["modes"], report["measured_modes"], report["mode"]) == (["maxn", "30w-all"], ["maxn", "30w-all"],
                                                                           "maxn")
    assert report["complete"] and report["run_id"]
    # Each mode's paired records (unpruned, its copy, the cut) carry that mode.
    with Store.open(tmp_path / "results.db", create=False) as store:
        records = list(store.records())
    assert sorted((r.mode, r.env["sensitivity"]["role"]) for r in records) == sorted(
        (mode, role) for mode in ("maxn", "30w-all") for role in ("unpruned", "unpruned copy (A/A)", "candidate"))
    lines = proc.stdout.splitlines()  # the summary: one row per group and mode
    assert any("features.0" in line and "maxn" in line for line in lines), proc.stdout
    assert any("features.0" in line and "30w-all" in line for line in lines), proc.stdout

    # --allocate sensitivity takes the rows of the mode pruning decides in: prune's first --mode, else the first.
    analysis = load_sensitivity(tmp_path / "out")
    assert analysis.modes() == ["maxn", "30w-all"]
    assert {point.mode for point in in_mode(analysis, []).points} == {"maxn"}
    chosen = in_mode(analysis, ["30w-all", "maxn"])
    assert {point.mode for point in chosen.points} == {"30w-all"} and len(chosen.points) == 2
    with pytest.raises(UsageError, match="has no latency in mode 10w .*; it measured maxn, 30w-all"):
        in_mode(analysis, ["10w"])
    proc = cli("prune", "--model", MODEL, "--task", TASK, "--strategy", "allocate", "--allocate", "sensitivity",
               "--sensitivity", "out", "--target", "xavier", "--mode", "10w", "--out", "pruned")
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("edgebench: error: --sensitivity out has no latency in mode 10w"), line
    assert xavier.state()["history"] == [0, 2, 3, 2]  # refused before anything switched

    # A table written before the mode column reads as one unnamed mode, used whatever --mode says.
    table = tmp_path / "out" / CSV_NAME
    with open(table, newline="") as stream:
        old = [{key: value for key, value in row.items() if key != "mode"} for row in csv.DictReader(stream)]
    with open(table, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(old[0]))
        writer.writeheader()
        writer.writerows(old)
    unnamed = load_sensitivity(tmp_path / "out")
    assert unnamed.modes() == [None] and len(in_mode(unnamed, ["10w"]).points) == 4


def test_an_unknown_or_repeated_mode_is_one_line_before_anything_switches(xavier, cli, tmp_path):
    for modes, message in (("maxn,turbo", f"target xavier has no mode 'turbo'; its modes: {XAVIER_MODES}"),
                           ("maxn,MAXN", "--mode names maxn more than once")):
        proc = cli("sensitivity", *ANALYSE, "--mode", modes, "--out", "out")
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines() == [f"edgebench: error: {message}"]
    assert xavier.state() == {"mode": 2}  # nvpmodel never asked to switch
    assert not (tmp_path / "out").exists()

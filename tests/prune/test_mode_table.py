"""`edgebench prune --mode A,B`: the baseline and the final model measured in every power mode.

EMULATED HARDWARE: the Jetson here is tests/support/fake_jetson.py's AGX Xavier (fake nvpmodel and
tegrastats replaying captured output). The power figures these tests read are the captured
tegrastats lines, not a measurement of these models: the tests check where the numbers go and that
the modes are switched and restored, never what pruning saves. The models, ONNX Runtime, the
workers and the store run for real on this CPU.
"""

import json

import pytest

from edgebench.errors import UsageError
from edgebench.models.resolve import resolve_model
from edgebench.prune.mode_plots import MODES_FIGURE, plot_modes
from edgebench.prune.mode_table import MODES_STAGE, POWER_WINDOW_S, measure_in_modes, mode_list, table_report
from edgebench.results.record import Settings
from edgebench.results.store import Store
from edgebench.session import run_session
from edgebench.sweep.paired import Pairing
from edgebench.targets import resolve_target
from fake_jetson import make_emulated_jetson
from onnx_models import matmul_relu

# Captured tegrastats rails (tests/data/jetson): the idle line sums to 7632 mW, the MAXN load line to 32850 mW.
IDLE_W, LOAD_W = 7.632, 32.85
QUICK = ["--task", "digits?size=16", "--train-steps", "30", "--finetune-steps", "2", "--final-finetune-steps", "0",
         "--rounds", "3", "--block-time", "0.02", "--threads", "1", "--strategy", "static", "--ratio", "0.5",
         "--criterion", "l1"]


@pytest.fixture
def xavier(tmp_path, monkeypatch):
    """The emulated AGX Xavier as this machine: its system root and fake tools for this process and its workers."""
    board = make_emulated_jetson(tmp_path / "board", "xavier")
    for name, value in board.env.items():
        monkeypatch.setenv(name, value)
    return board


def test_prune_measures_both_models_in_every_mode_and_restores_the_mode(xavier, cli, tmp_path):
    proc = cli("prune", "--model", "worker_models:tiny?channels=32", "--out", "pruned", "--target", "xavier",
               "--mode", "maxn,30w-all", "--device", "cpu", "-b", "onnxruntime", "--store", "results.db", *QUICK)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "pruned" / "report.json").read_text())
    table = report["modes"]
    assert table["roles"] == ["baseline", "final"] and "measured alone" in table["note"]
    assert [(row["mode"], row["backend"]) for row in table["rows"]] == [("maxn", "onnxruntime"),
                                                                        ("30w-all", "onnxruntime")]
    for row in table["rows"]:
        assert row["power_source"] == "tegrastats"  # the emulated one: see the module docstring
        assert row["power_window_s"] == POWER_WINDOW_S  # the pair ran shorter: 2 x 3 rounds x 0.02 s
        ratio = row["latency_ratio"]
        assert ratio["ci95"][0] <= ratio["ratio"] <= ratio["ci95"][1]
        for role in ("baseline", "final"):
            side = row[role]
            assert side["latency_ms"] > 0
            assert IDLE_W - 1e-9 <= side["avg_power_w"] <= LOAD_W + 1e-9
            assert side["mj_per_inference"] > 0
    # Both stages were switched and each put back: MODE_15W (id 2) before, between and after.
    assert xavier.state()["mode"] == 2
    assert xavier.state()["history"] == [0, 2, 0, 2, 3, 2]  # pruning in maxn, then maxn and 30w-all
    assert (tmp_path / "pruned" / MODES_FIGURE).stat().st_size > 0
    assert "per power mode" in proc.stdout and "30w-all" in proc.stdout
    # Every measurement of the table is a record with its mode: a paired pair and two power records per mode.
    with Store.open(tmp_path / "results.db", create=False) as store:
        records = [r for r in store.records() if (r.env.get("prune") or {}).get("stage") == MODES_STAGE]
    by_mode = {}
    for record in records:
        by_mode.setdefault(record.mode, []).append((record.method, record.env["prune"]["role"]))
    expected = sorted([("paired", "baseline"), ("paired", "final"), ("power", "baseline"), ("power", "final")])
    assert {mode: sorted(found) for mode, found in by_mode.items()} == {"maxn": expected, "30w-all": expected}
    power = [r for r in records if r.method == "power"]
    assert all(r.energy["source"] == "tegrastats" and r.env["nvpmodel"]["id"] in (0, 3) for r in power)


def test_a_mode_the_target_lacks_is_one_line_and_nothing_switches(xavier, cli):
    proc = cli("prune", "--model", "worker_models:tiny", "--out", "pruned", "--target", "xavier",
               "--mode", "maxn,turbo", "--device", "cpu", *QUICK)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "edgebench: error: target xavier has no mode 'turbo'; its modes: maxn, 10w, 15w, 30w-all, 30w-6core, "
        "30w-4core, 30w-2core, 15w-desktop"]
    assert xavier.state() == {"mode": 2}  # nvpmodel never asked to switch


def test_mode_list_takes_the_targets_names_once_each():
    definition = resolve_target("xavier").definition
    assert mode_list(definition, None) == []
    assert mode_list(definition, "MAXN, 30w-all") == ["maxn", "30w-all"]
    with pytest.raises(UsageError, match="--mode names maxn more than once"):
        mode_list(definition, "maxn,15w,MAXN")
    with pytest.raises(UsageError, match="--mode names no mode"):
        mode_list(definition, ",")


def test_without_a_power_sampler_the_power_columns_are_empty_not_zero(xavier, tmp_path):
    """The emulated Xavier without its tegrastats (and no jtop here): latency is measured, power is not."""
    (xavier.bin / "tegrastats").unlink()
    model = resolve_model(matmul_relu(str(tmp_path / "m.onnx")))  # an A/A pair: the table's path is the point
    settings = Settings(min_time_s=0.0, max_time_s=0.0, min_iterations=1, warmup_s=0.05, target_ci=0.0,
                        timeout_s=120.0, threads=1)
    lines = []
    with run_session(tmp_path / "store.db", log=lines.append) as session:
        rows = measure_in_modes(session, resolve_target("xavier").definition, "cpu", ["maxn"], [model, model],
                                ["baseline", "final"], ["onnxruntime"], settings, Pairing(rounds=3, block_s=0.02),
                                label=lambda role: {"role": role})
    [row] = rows
    assert (row.mode, row.power_source, row.power_window_s) == ("maxn", None, None)
    assert row.ratio is not None and row.ratio.ratio > 0, row.notes
    for side in row.sides.values():
        assert side.latency_ms > 0 and side.avg_power_w is None and side.mj_per_inference is None
    assert any(note.startswith("power not measured: tegrastats") for note in row.notes), row.notes
    assert [(r.method, r.env["role"]) for r in session.records] == [("paired", "baseline"), ("paired", "final")]
    assert xavier.state()["mode"] == 2
    # The figure says "not measured" where the energy bars would be, and is still drawn.
    report = {"model": "m", "target": "xavier", "backends": ["onnxruntime"],
              "modes": table_report(rows, ["baseline", "final"])}
    assert report["modes"]["rows"][0]["final"]["avg_power_w"] is None
    assert plot_modes(tmp_path, report).stat().st_size > 0

"""`edgebench prune` end to end: real training on the digits, real Torch-Pruning surgery, every
candidate measured in paired eager worker processes, records in a real store, outputs that load."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgebench.prune.loop import FINAL_ROUNDS_FACTOR, RETRY_ROUNDS_FACTOR
from edgebench.prune.outputs import load_pruned
from edgebench.results.store import Store
from onnx_models import matmul_relu

SUPPORT = Path(__file__).resolve().parents[1] / "support"
# A wide two-conv net at 16x16: its convolutions dominate its latency, so a cut channel shows.
MODEL = "worker_models:tiny?channels=128"
CONFIRM_ROUNDS = 8  # the confirmation's, apart from the screen's (--rounds 6) and its retry's (18)
QUICK = ["--task", "digits?size=16", "--train-steps", "30", "--finetune-steps", "5", "--final-finetune-steps", "5",
         "--rounds", "6", "--block-time", "0.04", "--threads", "1"]


def edgebench(*args, cwd, timeout=600):
    # Candidates are pickled worker_models modules: the CLI and its workers both import them.
    env = {**os.environ, "PYTHONPATH": str(SUPPORT)}
    return subprocess.run([sys.executable, "-m", "edgebench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def prune_records(path):
    with Store.open(path, create=False) as store:
        return [record.to_json_dict(with_samples=False) for record in store.records()]


def test_latency_pruning_keeps_only_measured_gains_and_writes_models_that_load(tmp_path):
    out = tmp_path / "pruned"
    proc = edgebench("prune", "--model", MODEL, "--out", str(out), "--max-iterations", "2",
                     "--max-accuracy-drop", "1", "--store", "results.db", *QUICK, "--confirm-rounds", str(CONFIRM_ROUNDS),
                     "--confirm-block-time", "0.02", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "iteration 1:" in proc.stderr and "paired ratio" in proc.stdout
    assert {p.name for p in out.iterdir()} >= {"model.pt2", "state_dict.pt", "pruning.json", "model.onnx",
                                               "report.json", "accuracy_vs_latency.png", "macs_vs_latency.png"}
    assert not (out / ".candidates").exists()
    report = json.loads((out / "report.json").read_text())
    assert report["objective"] == "latency" and report["backends"] == ["eager"]
    for key in ("latency_ms", "accuracy", "macs", "params"):
        assert key in report["baseline"] and key in report["final"]
    assert report["steps"], report
    kept = [step for step in report["steps"] if step["verdict"] == "kept"]
    assert len(kept) == report["kept_steps"]
    # Never slower: a kept step's whole interval is below the current model's latency.
    for step in kept:
        assert step["ratio_to_current"]["eager"]["ci95"][1] < 1.0
        assert step["accuracy"] is not None
    for step in report["steps"]:
        assert step["verdict"] in ("kept", "rejected") and step["reason"]
    if kept:
        assert report["final"]["macs"] < report["baseline"]["macs"]
        assert report["final"]["latency_ratio"]["eager"]["ratio"] > 0
    assert report["onnx_check"]["ok"], report["onnx_check"]
    # The state dict and the replayed history give the model that model.pt2 holds.
    rebuilt = load_pruned(out)
    program = torch.export.load(str(out / "model.pt2")).module()
    x = torch.randn(1, 3, 16, 16)
    assert torch.allclose(rebuilt(x), program(x), atol=1e-5)
    assert torch.load(out / "state_dict.pt", weights_only=True)
    # Every measured model is in the store, with what the pruner made of it.
    records = prune_records(tmp_path / "results.db")
    roles = {record["env"]["prune"]["role"] for record in records}
    # A chosen step is confirmed in a fresh paired run of its own (edgebench.prune.keep_rule), and
    # kept only if that run confirms it: a refuted choice leaves confirmation records too.
    confirmed = [step for step in report["steps"] if step["confirmation"]]
    assert set(map(id, kept)) <= set(map(id, confirmed))
    assert roles == {"current", "baseline", "candidate", "final"} | ({"confirmation"} if confirmed else set())
    assert report["keep_rule"]["confirm_alpha"] > 0
    assert report["keep_rule"]["confirm_pairing"] == {"rounds": CONFIRM_ROUNDS, "block_s": 0.02, "warmup_s": 0.3,
                                                      "seed": None}
    # The confirmation's runs, and only they, measure at its pairing.
    confirming = [r for r in records if r["env"]["pairing"]["rounds"] == CONFIRM_ROUNDS]
    assert {r["env"]["pairing"]["block_s"] for r in confirming} <= {0.02}
    assert len(confirming) == 3 * len(confirmed)
    records = [r for r in records if r not in confirming]
    for step in kept:
        assert step["confirmation"]["ratio_to_current"]["eager"]["ratio"] < 1.0
    candidates = [r for r in records if r["env"]["prune"]["role"] == "candidate"]
    # One record per candidate, two for one measured again after an undecided iteration.
    assert len(report["steps"]) <= len(candidates) <= 2 * len(report["steps"])
    # Each pairing runs --rounds; an iteration whose candidates measured faster but none
    # significantly (it says so) measures them once more with RETRY_ROUNDS_FACTOR times the rounds.
    rounds = int(QUICK[QUICK.index("--rounds") + 1])
    retried = "measuring them again with" in " ".join(proc.stderr.split())  # the console wraps long lines
    paired_rounds = {r["env"]["pairing"]["rounds"] for r in records if r["env"]["prune"]["role"] in ("current", "candidate")}
    assert rounds in paired_rounds
    assert paired_rounds <= ({rounds, rounds * RETRY_ROUNDS_FACTOR} if retried else {rounds})
    assert {r["env"]["pairing"]["rounds"] for r in records if r["env"]["prune"]["role"] == "final"} == {
        rounds * FINAL_ROUNDS_FACTOR}
    assert {r["env"]["prune"]["verdict"] for r in candidates} <= {"kept", "rejected"}


def test_flops_objective_stops_at_its_budget_and_prints_the_report_as_json(tmp_path):
    out = tmp_path / "flops"
    proc = edgebench("prune", "--model", MODEL, "--out", str(out), "--objective", "flops", "--budget", "0.95",
                     "--max-accuracy-drop", "1", "--json", "--store", "results.db", *QUICK, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report == json.loads((out / "report.json").read_text())
    assert report["objective"] == "flops" and report["stop_reason"].startswith("budget reached")
    assert report["final"]["macs"] <= 0.95 * report["baseline"]["macs"]
    # Measured all the same: every candidate has its paired latency.
    assert all(step["ratio_to_current"]["eager"] for step in report["steps"])


@pytest.mark.parametrize("args, message", [
    (["--objective", "speed"], "--objective must be one of latency, flops"),
    (["--criterion", "random"], "--criterion must be one of l1, hrank, taylor"),
    (["--task", "nosuch"], "unknown task 'nosuch'"),
    (["--backend", "tensorflow"], "unknown backend 'tensorflow'"),
])
def test_bad_options_are_one_line_and_exit_2(tmp_path, args, message):
    proc = edgebench("prune", "--model", MODEL, "--out", str(tmp_path / "o"), *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("edgebench: error: ")
    assert message in proc.stderr
    assert not (tmp_path / "o").exists()


def test_an_onnx_model_or_an_exported_program_cannot_be_pruned(tmp_path):
    path = matmul_relu(str(tmp_path / "m.onnx"))
    program = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(torch.nn.Linear(4, 2), (torch.randn(1, 4),)), str(program))
    for model, message in ((path, "needs a PyTorch model"), (str(program), "is a torch.export program")):
        proc = edgebench("prune", "--model", model, "--out", str(tmp_path / "o"), "--store", "results.db", *QUICK,
                         cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / "results.db").exists()


def test_staircase_probes_wider_widths_against_the_kept_one_and_records_them(tmp_path):
    out = tmp_path / "stairs"
    proc = edgebench("prune", "--model", MODEL, "--out", str(out), "--max-iterations", "1", "--staircase",
                     "--round-to", "16", "--max-accuracy-drop", "1", "--store", "results.db", *QUICK, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["staircase"] is True
    probes = [step for step in report["steps"] if step["reason"].startswith("stair probe")]
    first = [step for step in report["steps"] if not step["reason"].startswith("stair probe")]
    if not any(step["verdict"] == "kept" for step in report["steps"]):
        pytest.skip("no candidate measured faster on this busy machine: nothing to probe")
    assert probes, report["steps"]
    chosen_width = next(s for s in first if s["verdict"] == "kept" or "widened" in s["reason"])["channels"][1]
    for probe in probes:
        assert chosen_width < probe["channels"][1] < chosen_width + 32
        assert probe["ratio_to_current"]["eager"] is not None
    records = prune_records(tmp_path / "results.db")
    assert sum(r["env"]["prune"]["role"] == "stair probe" for r in records) == len(probes) + 1


def test_staircase_needs_the_latency_objective(tmp_path):
    proc = edgebench("prune", "--model", MODEL, "--out", str(tmp_path / "o"), "--objective", "flops", "--staircase",
                     cwd=tmp_path)
    assert proc.returncode == 2 and "--staircase needs --objective latency" in proc.stderr


def test_a_user_task_drives_the_loop_and_a_final_fine_tune_that_hurts_is_undone(tmp_path):
    out = tmp_path / "user-task"
    # A baseline trained well above chance, so wrecking it shows; a final fine-tune long enough to wreck.
    quick = ["--task", "prune_tasks:final_finetune_hurts", "--train-steps", "150", "--finetune-steps", "5",
             "--final-finetune-steps", "100", "--rounds", "6", "--block-time", "0.04", "--threads", "1"]
    proc = edgebench("prune", "--model", MODEL, "--out", str(out), "--max-iterations", "1", "--max-accuracy-drop", "1",
                     "--store", "results.db", *quick, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "prune_tasks:final_finetune_hurts?wreck_from=100"
    kept = [step for step in report["steps"] if step["verdict"] == "kept"]
    if not kept:
        pytest.skip("no candidate measured faster on this busy machine: no final fine-tune to undo")
    # The task names no metric, so its score is called "score".
    assert any("lowered score" in warning for warning in report["warnings"]), report["warnings"]
    assert report["final"]["accuracy"] == kept[-1]["accuracy"]
    assert any(p.abs().sum() > 0 for p in load_pruned(out).parameters())

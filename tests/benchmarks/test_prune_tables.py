"""The pruner's benchmark tables (benchmarks/prune_runs.py, prune_compare.py, prune_contrasts.py,
ssd_hrank.py), written from report.json files shaped as `edgebench prune` writes them: no prune runs
here (each takes minutes); prune_runs.py itself runs, reusing the reports it finds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmark_scripts import BENCHMARKS, load


prune_runs = load("prune_runs")
table_files = load("table_files")


def ratio(value: float, low: float, high: float, rounds: int = 20) -> dict:
    return {"ratio": value, "ci95": [low, high], "rounds": rounds}


def step(iteration: int, verdict: str = "rejected", confirmation: bool = False) -> dict:
    faster = {"eager": ratio(0.9, 0.85, 0.95, 10)}
    return {"iteration": iteration, "group": "layer1.0.conv1", "channels": [64, 56], "verdict": verdict,
            "reason": "kept" if verdict == "kept" else "not significantly faster", "ratio_to_current": faster,
            "confirmation": {"ratio_to_current": faster, "ratio_to_baseline": faster} if confirmation else None}


def report(objective: str = "latency", budget: float = 0.5, backends=("eager",), steps=(), **final) -> dict:
    """A report.json as the greedy loop writes it (the fields the tables read)."""
    ratios = {"eager": ratio(0.414, 0.405, 0.422), "onnxruntime": ratio(0.587, 0.555, 0.621)}
    base_ms, final_ms = {"eager": 4.19, "onnxruntime": 0.71}, {"eager": 1.73, "onnxruntime": 0.41}
    return {
        "strategy": "greedy", "objective": objective, "budget": budget, "backends": list(backends),
        "task": "digits?size=32", "metric": "accuracy", "model": "torchvision:resnet18?num_classes=10",
        "keep_rule": {"name": "screen, then confirm in a fresh paired run", "screen": "the screen",
                      "confirm": "the confirmation", "confirm_alpha": 0.01} if objective == "latency" else None,
        "stop_reason": "budget reached (latency at most 0.5 of the baseline)", "warnings": [],
        "baseline": {"accuracy": 0.9889, "macs": 37.0e6, "params": 11.18e6,
                     "latency_ms": {b: base_ms[b] for b in backends}},
        "final": {"accuracy": 0.9889, "macs": 25.2e6, "params": 2.90e6,
                  "latency_ms": {b: final_ms[b] for b in backends}, "latency_ratio": {b: ratios[b] for b in backends},
                  **final},
        "steps": list(steps), "kept_steps": sum(s["verdict"] == "kept" for s in steps), "wall_s": 250.4,
    }


def test_a_finished_run_is_reused_only_when_it_is_the_run_asked_for():
    # The report names its task with the task's defaults, as `edgebench prune` writes it.
    assert prune_runs.different("latency-0.5", report()) == ""
    assert prune_runs.different("both-0.7", report(budget=0.7, backends=("eager", "onnxruntime"))) == ""
    assert prune_runs.different("latency-0.5", {**report(), "task": "digits?size=16"}) == \
        "task 'digits?size=16', not 'digits?size=32'"
    assert prune_runs.different("flops-0.5", report()) == "objective 'latency', not 'flops'"


# Iteration 1: eleven rejected, one confirmed and kept; iteration 2: the chosen one refuted by its confirmation.
TWO_ITERATIONS = ([step(1) for _ in range(11)] + [step(1, "kept", confirmation=True)]
                  + [step(2) for _ in range(11)] + [step(2, "rejected", confirmation=True)])


def test_a_row_counts_kept_steps_candidates_and_the_keep_rules_confirmations(tmp_path):
    timing = {"command": "edgebench prune --budget 0.5", "wall_s": 256.0, "load_average": [1.0, 1.5],
              "reused": False}
    row = prune_runs.summarise("latency-0.5", tmp_path, report(steps=TWO_ITERATIONS), timing)
    assert (row["kept"], row["candidates"]) == (1, 24)
    assert row["confirmations"] == {"tried": 2, "confirmed": 1, "refuted": 1}
    results = {"script": "python benchmarks/prune_runs.py --out x", "model": prune_runs.MODEL, "task": "digits",
               "threads": None, "environment": table_files.environment(),
               "load_average": {"start": 1.0, "end": 2.0}, "runs": [row]}
    table = prune_runs.markdown(results)
    line = next(line for line in table.splitlines() if line.startswith("| latency, budget 0.5 |"))
    cells = [cell.strip() for cell in line.strip("|").split(" | ")]
    assert cells[2:5] == ["1 / 24", "1 / 2", "budget reached (latency at most 0.5 of the baseline)"]
    assert cells[5:] == ["eager 0.414 [0.405, 0.422] (4.19 → 1.73 ms)", "98.89% → 98.89%", "37.0 → 25.2 M",
                         "11.18 → 2.90 M", "4 min 16 s"]
    assert "load average 1 at the start, 2 after the last run" in table
    assert "Keep rule: screen, then confirm in a fresh paired run" in table


def test_a_flops_run_has_no_keep_rule_and_a_two_backend_run_shows_both(tmp_path):
    timing = {"command": "c", "reused": True}  # reused, never timed by the script
    flops = prune_runs.summarise("flops-0.5", tmp_path, report("flops", steps=[step(1, "kept")]), timing)
    both = prune_runs.summarise("both-0.7", tmp_path, report(budget=0.7, backends=("eager", "onnxruntime")), timing)
    assert prune_runs._confirmations(flops) == "- (no keep rule: flops objective)"
    assert prune_runs._latency(both) == ("eager 0.414 [0.405, 0.422] (4.19 → 1.73 ms); "
                                         "onnxruntime 0.587 [0.555, 0.621] (0.71 → 0.41 ms)")
    assert prune_runs._wall(flops) == "4 min 10 s (report.json's, loop only)"


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHMARKS / "prune_runs.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_finished_runs_are_reused_and_the_table_has_a_row_for_each(tmp_path):
    out = tmp_path / "runs"
    (out / "latency-0.5").mkdir(parents=True)
    (out / "latency-0.5" / "report.json").write_text(json.dumps(report(steps=TWO_ITERATIONS)))
    (out / "latency-0.5" / prune_runs.TIMING).write_text(json.dumps(
        {"command": "edgebench prune (as run)", "wall_s": 256.0, "load_average": [1.0, 1.5]}))
    (out / "both-0.7").mkdir()
    (out / "both-0.7" / "report.json").write_text(json.dumps(report(budget=0.7, backends=("eager", "onnxruntime"))))
    proc = run_script("--out", str(out), "--runs", "both-0.7,latency-0.5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("holds a finished prune run: reusing it") == 2
    assert "$ " not in proc.stdout  # no edgebench command was run
    table = (out / "table.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| latency")]
    assert [row.split(" | ")[0] for row in rows] == ["| latency on eager and ONNX Runtime, budget 0.7",
                                                     "| latency, budget 0.5"]
    assert "4 min 16 s (earlier invocation)" in rows[1] and "`edgebench prune (as run)`" in rows[1]
    assert "(report.json's, loop only)" in rows[0]
    assert "--budget 0.7" in rows[0] and "--backend eager,onnxruntime" in rows[0]
    data = json.loads((out / "table.json").read_text())
    assert [run["name"] for run in data["runs"]] == ["both-0.7", "latency-0.5"]
    assert data["environment"]["versions"]["torch"] and data["load_average"]["start"] is not None


def test_a_report_from_another_run_is_refused_in_one_line(tmp_path):
    (tmp_path / "floor").mkdir()
    (tmp_path / "floor" / "report.json").write_text(json.dumps(report(budget=0.5)))
    proc = run_script("--out", str(tmp_path), "--runs", "floor", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].endswith("is not a floor run (budget 0.5, not 0.2); remove the "
                                                         "folder to run it again")
    assert "Traceback" not in proc.stderr and not (tmp_path / "table.md").exists()
    proc = run_script("--out", str(tmp_path), "--runs", "latency-0.5,fast", cwd=tmp_path)
    assert proc.returncode == 1 and "unknown run fast; choose from latency-0.5, flops-0.5, both-0.7, floor" in \
        proc.stderr and "Traceback" not in proc.stderr


def test_tables_escape_cells_and_are_written_whole(tmp_path):
    assert table_files.markdown_table(["a", "b"], [["x|y", 1]]) == "| a | b |\n| --- | --- |\n| x\\|y | 1 |\n"
    assert table_files.ratio_text(None) == "not measured"
    written = table_files.write_table(tmp_path / "t", "name", "# table\n", {"figure": 1.5})
    assert written.read_text() == "# table\n" and json.loads((tmp_path / "t" / "name.json").read_text()) == {
        "figure": 1.5}
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["name.json", "name.md"]  # no temporary left


def test_the_compare_and_contrast_tables_show_what_the_docs_quote():
    compare = load("prune_compare").markdown({
        "script": "s", "backend": "eager", "rounds": 20, "environment": table_files.environment(),
        "runs": [{"out": "r18-latency", "objective": "latency", "budget": 0.5, "accuracy": 0.9889,
                  "baseline_accuracy": 0.9889, "macs": 25.2e6, "params": 2.9e6, "p50_ms": 1.7},
                 {"out": "r18-flops", "objective": "flops", "budget": 0.5, "accuracy": 0.9844,
                  "baseline_accuracy": 0.9889, "macs": 18.0e6, "params": 1.37e6, "p50_ms": 1.2}],
        "second_over_first": ratio(0.703, 0.687, 0.719)})
    assert "| `r18-flops` | flops, 0.5 | 98.44% (98.89%) | 18.0 M | 1.37 M | 1.200 |" in compare
    assert "`r18-flops` over `r18-latency`, latency on eager: 0.703 [0.687, 0.719]" in compare
    contrasts = load("prune_contrasts").markdown({
        "script": "s", "pruned": "r18-latency-floor", "model": "m", "task": "digits", "rounds": 20, "round_to": 16,
        "finetune_steps": 660, "masked_channels": 3344, "environment": table_files.environment(),
        "models": [{"model": "uniform L1 0.7, round_to=16", "accuracy": 0.9867, "macs": 2.9e6, "params": 0.83e6,
                    "p50_ms": None, "latency_ratio": ratio(0.223, 0.203, 0.246)}]})
    assert "| uniform L1 0.7, round_to=16 | 98.67% | 2.9 M | 0.83 M | - | 0.223 [0.203, 0.246] |" in contrasts
    assert "fine-tuned 660 steps" in contrasts and "3344 output channels" in contrasts


def test_the_ssd_tables_show_sizes_the_final_pair_and_map():
    stats = {"dense": {"params": 24.95e6, "macs": 30.88e9, "state_dict_bytes": 99.8e6, "onnx_bytes": 100.0e6},
             "pruned": {"params": 18.73e6, "macs": 23.37e9, "state_dict_bytes": 75.0e6, "onnx_bytes": 75.1e6}}
    table = load("ssd_hrank").markdown({
        "script": "s", "model": "torchvision:ssd300_vgg16?num_classes=11", "task": "digit-detection",
        "measured_part": "network", "ratio": 0.15, "rounds": 20, "finetune_steps": [50, 50],
        "environment": table_files.environment(), "masked_channels": 1128, "metric": "mAP", "metric_after_cut": 0.004,
        "prune_wall_s": 1928.0, "run_id": "r",
        "dense": {"accuracy": 0.010, "metrics": {"mAP": 0.010, "mAP@0.5": 0.025}, "model_stats": stats["dense"],
                  "latency_ms": {"eager": 215.5}},
        "pruned": {"accuracy": 0.084, "metrics": {"mAP": 0.084, "mAP@0.5": 0.149}, "model_stats": stats["pruned"],
                   "latency_ms": {"eager": 166.0}, "latency_ratio": {"eager": ratio(0.772, 0.761, 0.784, 40)}},
        "paired": [{"model": "dense", **stats["dense"], "p50_ms": 193.6, "latency_ratio": ratio(1, 1, 1)},
                   {"model": "pruned (HRank)", **stats["pruned"], "p50_ms": 160.0,
                    "latency_ratio": ratio(0.834, 0.792, 0.878)}]})
    assert "| parameters | 24.95 M | 18.73 M | -24.9% |" in table
    assert "| ONNX file | 100.0 MB | 75.1 MB | -24.9% |" in table
    assert ("| eager p50, the prune command's final pair (40 rounds) | 215.5 ms | 166.0 ms | "
            "0.772 [0.761, 0.784]: 1.30x faster |") in table
    assert "| mAP (mAP@0.5) | 0.010 (0.025) | 0.004 right after the cut; 0.084 (0.149) after 50 + 50" in table
    assert "| pruned (HRank) | 18.73 M | 24.9% | 23.37 G | 160.00 | 0.834 [0.792, 0.878] |" in table

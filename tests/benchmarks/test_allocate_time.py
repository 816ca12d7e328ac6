"""benchmarks/allocate_time.py's table from a report (the script itself runs a whole prune)."""

from __future__ import annotations

from benchmark_scripts import load

allocate_time = load("allocate_time")


def ratio(value: float) -> dict:
    return {"ratio": value, "ci95": [value - 0.02, value + 0.02], "rounds": 20}


def results(wall_s: float, final_ratio: float) -> dict:
    check = {"aim": {"onnxruntime": 0.6}, "predicted": {"onnxruntime": 0.59}, "measured": {"onnxruntime": ratio(0.66)}}
    again = {"aim": {"onnxruntime": 0.545}, "predicted": {"onnxruntime": 0.54}, "measured": {"onnxruntime": ratio(0.58)}}
    report = {"model": "torchvision:mobilenet_v2?num_classes=10", "task": "digits?size=32", "backends": ["onnxruntime"],
              "budget": 0.6, "round_to": 16, "metric": "accuracy", "warnings": [],
              "baseline": {"accuracy": 0.97, "macs": 6.0e6, "training": {"trained_here": True, "seconds": 61.0}},
              "final": {"accuracy": 0.96, "macs": 3.1e6, "latency_ratio": {"onnxruntime": ratio(final_ratio)}},
              "latency_model": {"checks": [check, again], "backends": {
                  "onnxruntime": {"kind": "layers", "cache": "measured", "seconds": 300.0}}}}
    return {"script": "python benchmarks/allocate_time.py --out x", "cache": "cold",
            "environment": {"date": "2026-12-01", "cpu": "cpu", "cpu_count": 2, "versions": {"torch": "2"}},
            "load_average": {"start": 0.5, "end": 1.0}, "run": {"report": report, "wall_s": wall_s}}


def test_the_table_gives_the_parts_the_checks_and_the_goals_verdict():
    table = allocate_time.markdown(results(540.0, 0.58))
    assert "| whole command (process start to exit) | 540 |" in table
    assert "| baseline training | 61 |" in table
    assert "| latency model, onnxruntime (layers) | 300 |" in table
    assert "| 2 | 0.545 | 0.540 | 0.580 [0.560, 0.600] |" in table
    assert "| accuracy | 97.00% -> 96.00% |" in table
    assert "**Goal (under 10 minutes, at or under the budget): met** (9.0 minutes)." in table


def test_a_warm_run_counts_nothing_for_what_came_from_the_cache():
    found = results(98.0, 0.58)
    report = found["run"]["report"]
    report["baseline"]["training"] = {"trained_here": True, "steps": 200, "cached": "/c/b.pt"}
    report["latency_model"]["backends"]["onnxruntime"]["cache"] = "hit"
    table = allocate_time.markdown(found)
    assert "| baseline training | 0 (trained weights from the cache) |" in table
    assert "| latency model, onnxruntime (layers) | 0 (cached; learning took 300) |" in table


def test_the_goal_needs_both_the_time_and_the_budget():
    assert "NOT met** (10.5 minutes)" in allocate_time.markdown(results(630.0, 0.58))
    assert "NOT met** (9.0 minutes)" in allocate_time.markdown(results(540.0, 0.62))
    assert allocate_time.markdown({**results(1.0, 0.5), "run": None}).endswith("Nothing finished.\n")

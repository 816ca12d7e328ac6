"""benchmarks/method_comparison.py's logic that needs no run: the floor and the search's pick, the
same fine-tuning for every method, the goal's verdict, the table of a stopped run, its arguments
(the script itself runs prune and search for an hour or more; `--quick` is its smoke run)."""

from __future__ import annotations

import json

import pytest

from benchmark_scripts import load

from edgebench.errors import UsageError

method_comparison = load("method_comparison")
method_runs = load("method_runs")

BACKENDS = ["onnxruntime", "eager"]


def ratio(value: float, low: float | None = None, high: float | None = None) -> dict:
    return {"ratio": value, "ci95": [value - 0.02 if low is None else low, value + 0.02 if high is None else high],
            "rounds": 20}


def prune_report(accuracy: float, onnxruntime: float | None = 0.12, eager: float | None = 0.43, **extra) -> dict:
    """The fields of an `edgebench prune` report.json the comparison reads."""
    return {"metric": "accuracy", "backends": BACKENDS, "ratio": 0.5,
            "baseline": {"accuracy": 0.9756, "macs": 37.0e6, "params": 11.18e6, "training": {"trained_here": True,
                                                                                             "steps": 200,
                                                                                             "seconds": 21.4}},
            "final": {"accuracy": accuracy, "macs": 9.9e6, "params": 2.8e6,
                      "latency_ratio": {"onnxruntime": onnxruntime and ratio(onnxruntime),
                                        "eager": eager and ratio(eager)}},
            **extra}


def tuned(number: int, accuracy: float, onnxruntime: float | None, eager: float | None) -> dict:
    return {"individual": number, "accuracy_before": accuracy - 0.05, "accuracy": accuracy, "macs": number * 1e6,
            "latency_ms": {}, "latency_ratio": {"onnxruntime": onnxruntime and ratio(onnxruntime),
                                                "eager": eager and ratio(eager)},
            "model_file": f"front/individual-{number:03d}.pt"}


def search_report(*front: dict) -> dict:
    return {"metric": "accuracy", "backends": BACKENDS, "final_front": list(front),
            "baseline": {"accuracy": 0.9756, "floor": 0.9656, "latency_ms": {"onnxruntime": 0.7, "eager": 4.2},
                         "training": {"trained_here": True, "steps": 200, "cached": "/cache/x.pt"}},
            "individuals": [{"individual": t["individual"], "params": t["individual"] * 1e5} for t in front]}


def test_a_search_gives_its_fastest_front_member_at_the_floor_by_its_worst_backend():
    report = search_report(
        tuned(1, 0.95, 0.30, 0.40),  # the fastest, but under the floor
        tuned(2, 0.98, 0.50, 0.90),  # fastest on ONNX Runtime; its slowest backend is 0.90
        tuned(3, 0.97, 0.70, 0.80),  # at the floor exactly; its slowest backend is 0.80
        tuned(4, 0.99, 0.20, None),  # eager could not measure it
    )
    assert method_runs.fastest_at(report, 0.97)["individual"] == 3
    assert method_runs.fastest_at(report, 0.975)["individual"] == 2
    assert method_runs.fastest_at(report, 0.99) is None
    # Against uniform's ratios (0.5 on ONNX Runtime, 1.0 on eager) 3 is 1.4x uniform on ONNX Runtime
    # and 2 is at most 1.0x on both: eager's ratios no longer decide alone.
    assert method_runs.fastest_at(report, 0.97, {"onnxruntime": 0.5, "eager": 1.0})["individual"] == 2


def test_search_py_picks_as_before_with_the_baselines_p50_beside():
    search = load("search")
    report = {**search_report(tuned(2, 0.98, 0.50, None), tuned(3, 0.97, 0.70, None)), "backends": ["onnxruntime"]}
    assert search._fastest_at(report, 0.97) == {**report["final_front"][0], "baseline_ms": 0.7}
    assert search._fastest_at(report, 0.99) is None


def test_the_floor_is_the_uniform_models_metric_or_the_baselines_minus_the_drop():
    uniform = prune_report(0.9889)
    assert method_comparison.accuracy_floor("uniform", uniform, 0.01)["value"] == 0.9889
    assert method_comparison.accuracy_floor("baseline", uniform, 0.01)["value"] == pytest.approx(0.9656)


def test_each_method_puts_its_model_at_the_floor_into_the_comparison(tmp_path):
    search = {"report": search_report(tuned(2, 0.98, 0.50, 0.90), tuned(3, 0.99, 0.70, 0.80)), "wall_s": 900.0}
    uniform = {"methods": {"uniform": {"report": prune_report(0.98, onnxruntime=0.12, eager=0.43)}}}
    ratios = method_comparison.uniform_ratios(uniform)
    assert ratios == {"onnxruntime": 0.12, "eager": 0.43}
    picked = method_comparison.method_model("search-latency", search, 0.985, tmp_path / "search-latency", ratios)
    assert picked["metric"] == 0.99 and picked["params"] == 3e5 and picked["at_floor"] is True
    assert picked["file"] == str(tmp_path / "search-latency" / "front/individual-003.pt")
    missed = method_comparison.method_model("search-macs", search, 0.995, tmp_path, ratios)
    assert missed["file"] is None
    assert missed["label"] == "none of the 2 fine-tuned front members reaches the floor (best 99.00%)"

    (tmp_path / "allocate").mkdir()
    allocate = {"report": prune_report(0.97, backend_budgets={"onnxruntime": 0.1, "eager": 0.4},
                                       latency_model={"kind": "layers"}), "wall_s": 400.0}
    assert method_comparison.method_model("allocate", allocate, 0.98, tmp_path / "allocate", ratios)["file"] is None
    (tmp_path / "allocate" / "model.pt2").write_bytes(b"")
    under = method_comparison.method_model("allocate", allocate, 0.98, tmp_path / "allocate", ratios)
    assert under["at_floor"] is False and under["label"] == "budget onnxruntime 0.1, eager 0.4, layers latency model"


def test_every_method_gets_the_same_baseline_fine_tuning_and_widths():
    args = method_comparison.arguments(["--finetune-steps", "7", "--final-finetune-steps", "70", "--threads", "1"])
    results = {"methods": {"uniform": {"report": prune_report(0.98, onnxruntime=0.12, eager=0.43)}}}
    commands = {name: method_comparison.method_command(args, name, "s.db", results)
                for name in method_comparison.METHODS}

    def option(options: list[str], name: str) -> str:
        return options[options.index(name) + 1]

    for command, options in commands.values():
        assert [option(options, name) for name in ("--finetune-steps", "--final-finetune-steps", "--train-steps",
                                                   "--round-to", "--criterion", "--backend", "--threads")] == \
            ["7", "70", "200", "16", "l1", "onnxruntime,eager", "1"]
    assert {name: command for name, (command, _) in commands.items()} == {
        "uniform": "prune", "allocate": "prune", "search-macs": "search", "search-latency": "search"}
    uniform = commands["uniform"][1]
    assert option(uniform, "--strategy") == "static" and option(uniform, "--ratio") == "0.5"
    # 0.9 times uniform's ratio on each backend
    assert option(commands["allocate"][1], "--backend-budget") == "onnxruntime=0.108,eager=0.387"
    assert [option(commands[name][1], "--objectives") for name in ("search-macs", "search-latency")] == \
        ["accuracy,macs", "accuracy,latency"]


def test_allocates_budget_needs_the_uniform_cut_measured_on_every_backend():
    with pytest.raises(UsageError, match="not measured on eager"):
        method_runs.allocate_budgets(prune_report(0.98, eager=None), BACKENDS, 0.9)
    assert method_runs.allocate_budgets(prune_report(0.98, eager=0.95), BACKENDS, 1.2) == {"onnxruntime": 0.144,
                                                                                             "eager": 1.0}


def test_the_goal_is_met_at_or_under_0_9_on_one_backend_and_never_above_1():
    verdict = method_comparison.goal_verdict
    assert verdict({"onnxruntime": ratio(0.85), "eager": ratio(0.97)}, True) == \
        "met (point estimates); the intervals show it met"
    assert verdict({"onnxruntime": ratio(0.89, 0.85, 0.93), "eager": ratio(0.97)}, True) == \
        "met (point estimates); the intervals span the goal"
    # 0.5 on one backend, but above 1.0 on the other: never above 1.0 is part of the goal
    assert verdict({"onnxruntime": ratio(0.5), "eager": ratio(1.05)}, True) == \
        "NOT met (point estimates); the intervals show it missed"
    assert verdict({"onnxruntime": ratio(0.95), "eager": ratio(0.93)}, True) == \
        "NOT met (point estimates); the intervals show it missed"
    assert verdict({"onnxruntime": ratio(0.5), "eager": ratio(0.6)}, False) == "NOT met: under the floor"
    assert verdict({"onnxruntime": ratio(0.5), "eager": None}, True) == "not measured on eager"


def test_at_uniforms_latency_allocate_is_held_to_a_metric_no_lower_than_uniforms():
    verdict = method_comparison.equal_latency_verdict
    assert verdict(0.9956, 0.9889, {"onnxruntime": ratio(1.02, 0.98, 1.06), "eager": ratio(0.97)}) == \
        "met at equal latency: 99.56% against uniform's 98.89%, no backend slower by its interval"
    assert verdict(0.9956, 0.9889, {"onnxruntime": ratio(1.047, 1.006, 1.09), "eager": ratio(1.0)}) == \
        "metric met (99.56% against uniform's 98.89%), but slower than uniform on onnxruntime by the interval"
    assert verdict(0.98, 0.9889, {"onnxruntime": ratio(0.8), "eager": ratio(0.8)}) == \
        "NOT met at equal latency: 98.00% against uniform's 98.89%"
    assert verdict(0.99, 0.9889, {"onnxruntime": None, "eager": ratio(0.8)}) == "not measured on onnxruntime"


class Entry:
    def __init__(self, p50_ms: float | None, error: str | None = None):
        self.ok, self.p50_ms, self.error = error is None, p50_ms, error


class Measured:
    """A PairedMeasurement's surface: entries, and ratio(i, j) from their p50s (None for a failed one)."""

    def __init__(self, *entries: Entry):
        self.entries = list(entries)

    def ratio(self, index: int, reference: int):
        entry, ref = self.entries[index], self.entries[reference]
        if not (entry.ok and ref.ok):
            return None
        value = entry.p50_ms / ref.p50_ms
        return type("Found", (), {"as_dict": lambda self: ratio(value)})()


def test_a_backends_paired_run_gives_each_model_over_the_baseline_and_over_uniform():
    figures = method_comparison.paired_figures(
        Measured(Entry(4.0), Entry(2.0), Entry(1.0), Entry(None, "export failed")),
        ["baseline", "uniform", "search-latency", "allocate"])
    assert figures["over_baseline"]["uniform"]["ratio"] == 0.5
    assert figures["over_uniform"]["search-latency"]["ratio"] == 0.5
    assert set(figures["over_uniform"]) == {"search-latency", "allocate"}
    assert figures["over_uniform"]["allocate"] is None and figures["errors"] == {"allocate": "export failed"}


def stopped_results(tmp_path) -> dict:
    """A run interrupted after its ONNX Runtime measurement: search-macs failed, search-latency's
    front never reached the floor, eager not measured."""
    args = method_comparison.arguments(["--out", str(tmp_path)])
    results = method_comparison.started(args, None)
    results["environment"] = {"date": "2026-11-30", "cpu": "test CPU", "cpu_count": 2, "versions": {"python": "3.11"}}
    results["load_average"] = {"start": 1.0, "end": 1.2}
    uniform = {"report": prune_report(0.9889), "wall_s": 107.0}
    allocate = {"report": prune_report(0.9911, backend_budgets={"onnxruntime": 0.108, "eager": 0.387}, latency_model={
        "kind": "layers", "backends": {"onnxruntime": {"cache": "measured"}, "eager": {"cache": "hit"}}}),
        "wall_s": 447.0}
    results.update(
        metric="accuracy", input_shape="3x32x32", interrupted=True, wall_s=1800.0,
        floor=method_comparison.accuracy_floor("uniform", uniform["report"], 0.01),
        methods={"uniform": uniform, "allocate": allocate, "search-macs": {"error": "edgebench search failed (exit 1)"},
                 "search-latency": {"report": search_report(tuned(2, 0.97, 0.5, 0.6)), "wall_s": 1200.0}},
        models={"baseline": {"label": "unpruned", "metric": 0.9756, "macs": 37.0e6, "params": 11.18e6, "file": "m",
                             "at_floor": None},
                "uniform": {"label": "0.5 of every group cut", "metric": 0.9889, "macs": 9.9e6, "params": 2.8e6,
                            "file": "u", "at_floor": True},
                "allocate": {"label": "budget onnxruntime 0.108, eager 0.387, layers latency model", "metric": 0.9911, "macs": 21.8e6,
                             "params": 5.1e6, "file": "a", "at_floor": True},
                "search-macs": {"label": "edgebench search failed (exit 1)", "file": None},
                "search-latency": {"label": "none of the 1 fine-tuned front members reaches the floor (best 97.00%)",
                                   "file": None}},
        paired={"onnxruntime": {"p50_ms": {"baseline": 0.71, "uniform": 0.09, "allocate": 0.08},
                                "errors": {},
                                "over_baseline": {"uniform": ratio(0.119), "allocate": ratio(0.107)},
                                "over_uniform": {"allocate": ratio(0.85)}}})
    return results


def test_a_method_on_another_baseline_is_said():
    run = {"report": prune_report(0.98)}  # its baseline scored 97.56%
    assert method_comparison.other_baseline("allocate", run, 0.9756) is None
    assert method_comparison.other_baseline("allocate", run, 0.9711) == \
        "allocate's baseline scored 97.56%, uniform's 97.11%: not the same baseline"
    assert method_comparison.other_baseline("search-macs", {"error": "failed"}, 0.9711) is None


def test_a_stopped_run_writes_the_table_of_what_it_did(tmp_path):
    results = stopped_results(tmp_path)
    results["warnings"] = ["allocate's baseline scored 97.56%, uniform's 97.11%: not the same baseline"]
    table = method_comparison.write(tmp_path, results).read_text()
    assert "**interrupted**" in table and "**--quick" not in table
    assert "The accuracy floor: **98.89%** (the uniform model's final metric)" in table
    assert "| baseline | unpruned | 97.56% | 37.0 | 11.18 | p50 0.710 ms | not measured | - | - | - | - |" in table
    assert ("| uniform | 0.5 of every group cut | 98.89% | 9.9 | 2.80 | 0.119 [0.099, 0.139] | not measured | 1 | 1 "
            "| the reference | 107 (baseline trained here, 21 s) |") in table
    # eager was not measured: the goal needs every backend
    assert ("| allocate | budget onnxruntime 0.108, eager 0.387, layers latency model | 99.11% | 21.8 | 5.10 | 0.107 [0.087, 0.127] | "
            "not measured | 0.850 [0.830, 0.870] | not measured | not measured on eager | 447 (baseline trained "
            "here, 21 s; latency model onnxruntime measured, eager hit) |") in table
    assert ("| search-macs | edgebench search failed (exit 1) | - | - | - | not measured | not measured | "
            "not measured | not measured | NOT met: no model | - |") in table
    assert "| search-latency | none of the 1 fine-tuned front members reaches the floor (best 97.00%) |" in table
    assert table.endswith("Warnings: allocate's baseline scored 97.56%, uniform's 97.11%: not the same baseline.\n")
    assert json.loads((tmp_path / "method_comparison.json").read_text())["interrupted"] is True


def test_at_a_budget_of_uniforms_latency_the_table_holds_allocate_to_the_equal_latency_goal(tmp_path):
    results = stopped_results(tmp_path)
    results["settings"]["budget_factor"] = 1.0
    results["paired"]["eager"] = {"p50_ms": {}, "errors": {}, "over_baseline": {"uniform": ratio(0.44)},
                                  "over_uniform": {"allocate": ratio(1.01)}}
    table = method_comparison.markdown(results)
    assert "| met at equal latency: 99.11% against uniform's 98.89%, no backend slower by its interval |" in table
    assert "Allocate, at a budget of uniform's own latency, is held to the other goal" in table
    results["settings"]["budget_factor"] = 0.9
    assert "at equal latency" not in method_comparison.markdown(results)


def test_before_the_uniform_cut_finished_the_table_says_so(tmp_path):
    results = method_comparison.started(method_comparison.arguments(["--out", str(tmp_path), "--quick"]), None)
    table = method_comparison.markdown(results)
    assert "**--quick smoke run" in table and table.endswith("nothing to compare yet.\n")


def test_a_run_again_reuses_finished_methods_only_with_the_same_settings(tmp_path):
    earlier = stopped_results(tmp_path)
    (tmp_path / "uniform").mkdir()
    (tmp_path / "uniform" / "report.json").write_text("{}")
    previous = json.loads(json.dumps(earlier))
    again = method_comparison.started(method_comparison.arguments(["--out", str(tmp_path), "--store", "x.db"]),
                                      previous)
    # allocate and search-latency finished too, but their folders are gone; search-macs failed
    assert list(again["methods"]) == ["uniform"]
    with pytest.raises(SystemExit, match=r"other settings \(finetune_steps\)"):
        method_comparison.started(method_comparison.arguments(["--out", str(tmp_path), "--finetune-steps", "5"]),
                                  previous)


def test_arguments_are_checked_before_anything_runs(capsys):
    arguments = method_comparison.arguments
    for argv, message in [(["--methods", "uniform,greedy"], "unknown method greedy"),
                          (["--methods", "allocate,search-latency"], "--methods must include uniform"),
                          (["--ratio", "1"], "--ratio must be in (0, 1)"),
                          (["--population", "3"], "--population must be at least 4"),
                          (["--floor", "lowest"], "invalid choice: 'lowest'"),
                          (["--backends", ","], "--backends names no backend")]:
        with pytest.raises(SystemExit):
            arguments(argv)
        assert message in capsys.readouterr().err
    args = arguments(["--methods", "search-latency,uniform", "--quick", "--generations", "3"])
    assert args.methods == ["uniform", "search-latency"]  # uniform first: the others need it
    assert (args.population, args.generations, args.finetune_steps) == (4, 3, 2)  # --quick, unless given
    assert arguments([]).population == 10

"""`edgebench search` end to end: real Torch-Pruning cuts of a tiny net on the digits, real
pymoo NSGA-II, every generation measured in one paired eager worker run, records in a real store."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from edgebench.results.store import Store
from edgebench.search.front_plots import compare_fronts, plot_search
from pymoo.indicators.hv import Hypervolume
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from support_path import with_support

# Two prunable groups (the convolutions; the classifier keeps its classes). No real training: the
# test is about the search's bookkeeping, not accuracy.
MODEL = "worker_models:tiny?channels=32"
QUICK = ["--task", "digits?size=16", "--train-steps", "1", "--finetune-steps", "1", "--final-finetune-steps", "2",
         "--rounds", "2", "--block-time", "0.02", "--threads", "1", "--round-to", "4"]


@pytest.mark.parametrize("args, message", [
    (["--objectives", "accuracy,energy"], "--objectives must be one of accuracy,latency, accuracy,macs, not "
                                          "'accuracy,energy'"),
    (["--population", "3"], "--population must be at least 4, not 3"),
    (["--generations", "0"], "--generations must be at least 1, not 0"),
    (["--min-keep", "0"], "--min-keep must be in (0, 1], not 0"),
    (["--criterion", "magic"], "--criterion must be one of"),
])
def test_bad_options_are_one_line_and_exit_2(cli, tmp_path, args, message):
    proc = cli("search", "--model", MODEL, "--out", str(tmp_path / "o"), *args)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"edgebench: error: {message}")
    assert not (tmp_path / "o").exists()


def test_a_search_measures_every_generation_keeps_every_individual_and_never_loses_hypervolume(cli, tmp_path,
                                                                                                  monkeypatch):
    # The individuals are pickled worker_models modules: the workers import them too.
    monkeypatch.setenv("PYTHONPATH", with_support())
    out = tmp_path / "search"
    proc = cli("search", "--model", MODEL, "--population", "4", "--generations", "2", "--store", "results.db",
               "--out", str(out), "--json", *QUICK)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report == json.loads((out / "report.json").read_text())
    assert report["reference_point"] == [1.0, 1.1]  # one backend: accuracy and its latency
    assert sorted(report["widths"]) == ["features.0", "features.2"]
    individuals = {i["individual"]: i for i in report["individuals"]}
    generations = report["generations"]
    assert [g["generation"] for g in generations] == [1, 2]
    assert generations[0]["new"] == len(generations[0]["population"]) == 4
    # The first generation starts with two uniform cuts: every group at 0.25 (8 of 32), then at 0.625 (20).
    first = [individuals[n]["widths"] for n in sorted(individuals) if individuals[n]["generation"] == 1]
    assert first[:2] == [{"features.0": 8, "features.2": 8}, {"features.0": 20, "features.2": 20}]
    assert sum(g["new"] for g in generations) == len(individuals)
    # Widths are aligned to --round-to (or the full width) and never under --min-keep.
    for individual in individuals.values():
        for group, kept in individual["widths"].items():
            full = report["widths"][group]
            assert kept == full or kept % 4 == 0, individual
            assert 0.25 * full <= kept <= full
        assert individual["latency_ratio"]["eager"]["ratio"] > 0
    # Every generation's front is its population's non-dominated set ...
    def points(numbers):
        return np.array([[1 - individuals[n]["accuracy"], individuals[n]["latency_ratio"]["eager"]["ratio"]]
                         for n in numbers])
    for generation in generations:
        population = generation["population"]
        assert len(population) == 4
        front = NonDominatedSorting().do(points(population), only_non_dominated_front=True)
        assert sorted(generation["front"]) == sorted({population[i] for i in front})
    # ... and the hypervolume, of everything measured so far, never falls (recomputed here with pymoo).
    hypervolumes = [g["hypervolume"] for g in generations]
    assert hypervolumes == sorted(hypervolumes)
    for generation in generations:
        so_far = [n for n, i in individuals.items() if i["generation"] <= generation["generation"]]
        found = points(so_far)[NonDominatedSorting().do(points(so_far), only_non_dominated_front=True)]
        assert generation["hypervolume"] == pytest.approx(Hypervolume(ref_point=np.array([1.0, 1.1]))(found))
    # The final front is the last population's, fine-tuned and measured again, its models saved.
    final = report["final_front"]
    assert sorted(t["individual"] for t in final) == sorted(set(generations[-1]["front"]))
    for tuned in final:
        assert tuned["latency_ratio"]["eager"]["rounds"] == 4  # twice --rounds
        module = torch.load(out / tuned["model_file"], weights_only=False)
        assert module(torch.rand(1, 3, 16, 16)).shape == (1, 10)
    # front.csv: one row per individual, then one per fine-tuned model.
    with open(out / "front.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["stage"] for row in rows] == ["search"] * len(individuals) + ["final"] * len(final)
    assert {int(row["individual"]) for row in rows if row["stage"] == "search"} == set(individuals)
    assert all(float(row["eager_low"]) <= float(row["eager_ratio"]) <= float(row["eager_high"]) for row in rows)
    assert (out / "fronts.png").stat().st_size > 0 and not (out / ".candidates").exists()
    # Every individual is a record, tagged with its generation; each generation's run has the baseline twice.
    with Store.open(tmp_path / "results.db", create=False) as store:
        [run] = store.runs()
        records = [record.to_json_dict(with_samples=False) for record in store.records()]
    assert run.tags["command"] == "search" and run.tags["objectives"] == "accuracy,latency"
    searched = [r["env"]["search"] for r in records if r["env"]["search"]["role"] == "candidate"]
    assert sorted(s["individual"] for s in searched) == sorted(individuals)
    assert all(s["generation"] == individuals[s["individual"]]["generation"] for s in searched)
    finals = [r["env"]["search"] for r in records if r["env"]["search"]["role"] == "final"]
    assert sorted(s["individual"] for s in finals) == sorted(t["individual"] for t in final)
    references = [r["env"]["search"] for r in records if r["env"]["search"]["role"] in ("current", "baseline")]
    assert len(references) == 2 * (len([g for g in generations if g["new"]]) + 1)

    # The figures of an accuracy,macs search and the comparison of two searches, from the same data.
    macs_report = {**report, "objectives": "accuracy,macs"}
    macs_dir = tmp_path / "macs"
    macs_dir.mkdir()
    (macs_dir / "report.json").write_text(json.dumps(macs_report))
    assert [p.name for p in plot_search(macs_dir, macs_report)] == ["fronts.png", "fronts_macs.png"]
    assert compare_fronts(out, macs_dir, tmp_path / "compared.png").stat().st_size > 0


def test_with_two_backends_each_latency_is_an_objective_of_its_own(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", with_support())
    out = tmp_path / "search"
    proc = cli("search", "--model", MODEL, "--backend", "onnxruntime,eager", "--population", "4", "--generations",
               "2", "--out", str(out), "--json", *QUICK)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["reference_point"] == [1.0, 1.1, 1.1]
    individuals = {i["individual"]: i for i in report["individuals"]}
    assert all(set(i["latency_ratio"]) == {"onnxruntime", "eager"} for i in individuals.values())

    def points(numbers):
        return np.array([[1 - individuals[n]["accuracy"], individuals[n]["latency_ratio"]["onnxruntime"]["ratio"],
                          individuals[n]["latency_ratio"]["eager"]["ratio"]] for n in numbers])
    # Each generation's front is non-dominated in all three objectives, its hypervolume three-dimensional.
    for generation in report["generations"]:
        population = generation["population"]
        front = NonDominatedSorting().do(points(population), only_non_dominated_front=True)
        assert sorted(generation["front"]) == sorted({population[i] for i in front})
        so_far = [n for n, i in individuals.items() if i["generation"] <= generation["generation"]]
        found = points(so_far)[NonDominatedSorting().do(points(so_far), only_non_dominated_front=True)]
        assert generation["hypervolume"] == pytest.approx(Hypervolume(ref_point=np.array([1.0, 1.1, 1.1]))(found))

"""``edgebench compare --pruned``: each prune run's final model against its baseline, from the store."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import edgebench.cli.main  # noqa: F401  (registers every sub-command on app)
from edgebench.cli.app import app
from edgebench.errors import UsageError
from edgebench.results.store import Store
from records import synthetic_record

runner = CliRunner(env={"COLUMNS": "250"})


def _prune_figures(role: str, stage: str = "final", **model) -> dict:
    metrics = {"mAP": 0.40 if role == "baseline" else 0.39, "mAP@0.5": 0.7}
    return {"role": role, "stage": stage, "metric": "mAP", "metrics": metrics, "model": model}


def _store(path, extra_iteration_record: bool = True) -> str:
    with Store.open(path) as store:
        run = store.create_run(host="bench-a", git_commit="abc", command=["edgebench", "prune"], tags={})
        common = dict(backend="eager", method="paired", created_at=run.started_at, per_process=300,
                      process_factors=(1.0, 1.0, 1.0))
        store.add_record(synthetic_record(run.id, 20.0, seed=1, model="torchvision:ssd300_vgg16#network",
                                          env={"prune": _prune_figures("baseline", macs=30e9, params=24e6,
                                                                       state_dict_bytes=96e6)}, **common))
        store.add_record(synthetic_record(run.id, 15.0, seed=2, model="torchvision:ssd300_vgg16#network [pruned, final]",
                                          env={"prune": _prune_figures("final", macs=22.5e9, params=18e6,
                                                                       state_dict_bytes=72e6)}, **common))
        if extra_iteration_record:  # a loop measurement: not part of the final pair
            store.add_record(synthetic_record(run.id, 99.0, seed=3, model="candidate",
                                              env={"prune": {"role": "baseline", "iteration": 1}}, **common))
        store.finish_run(run.id, "finished")
    return run.id


def test_the_pruned_table_joins_each_final_model_with_its_own_baseline(tmp_path):
    path = tmp_path / "store.db"
    _store(path)
    result = runner.invoke(app, ["compare", "--pruned", "--store", str(path), "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["model"] == "torchvision:ssd300_vgg16#network"
    assert (row["mAP before"], row["mAP after"]) == (0.40, 0.39)
    assert round(row["macs change %"], 6) == -25.0 and round(row["params change %"], 6) == -25.0
    assert row["onnx_bytes before"] is None and row["onnx_bytes change %"] is None
    assert 1.30 < row["speedup"] < 1.36 and row["speedup ci95 low"] < row["speedup"] < row["speedup ci95 high"]
    assert round(row["latency change %"]) == round((row["p50 ms after"] / row["p50 ms before"] - 1) * 100)

    markdown = runner.invoke(app, ["compare", "--pruned", "--store", str(path), "--format", "markdown"])
    assert markdown.exit_code == 0, markdown.output
    line = markdown.output.splitlines()[2]
    assert "mAP 0.400 -> 0.390" in line and "30000.0 -> 22500.0 (-25.0%)" in line and "96.0 -> 72.0 (-25.0%)" in line


def test_pruned_and_selectors_together_or_no_prune_run_are_refused_in_one_line(tmp_path):
    path = tmp_path / "store.db"
    _store(path)
    both = runner.invoke(app, ["compare", "--pruned", "--baseline", "eager", "--store", str(path)])
    assert isinstance(both.exception, UsageError) and "without --baseline" in str(both.exception)
    neither = runner.invoke(app, ["compare", "--store", str(path)])
    assert isinstance(neither.exception, UsageError) and "needs --baseline and --contender" in str(neither.exception)

    plain = tmp_path / "plain.db"
    with Store.open(plain) as store:
        run = store.create_run(host="bench-a", git_commit="abc", command=["edgebench", "run"], tags={})
        store.add_record(synthetic_record(run.id, 2.0, created_at=run.started_at))
        store.finish_run(run.id, "finished")
    none = runner.invoke(app, ["compare", "--pruned", "--store", str(plain)])
    assert isinstance(none.exception, UsageError) and "no pruned variants" in str(none.exception)

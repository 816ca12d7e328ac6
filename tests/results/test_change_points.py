"""Change points across a key's history: E-divisive with a t-test on synthetic series (a step, pure
noise, a slow drift), each point's environment changes, and the section ``edgebench regress`` adds."""

from __future__ import annotations

import json
from itertools import combinations

import numpy as np
import pytest
from typer.testing import CliRunner

import edgebench.cli.regress  # noqa: F401  (registers the sub-command on app)
from edgebench.cli.app import app
from edgebench.results import edivisive
from edgebench.results.change_points import MIN_POINTS, environment_changes, find
from edgebench.results.regress import DEFAULT_THRESHOLD
from edgebench.results.store import Store

from records import ENV, synthetic_record

NOISE = 0.01  # 1% run-to-run noise, as nightly p50s on a quiet board


def noisy(levels, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    levels = np.asarray(levels, dtype=np.float64)
    return levels * (1.0 + NOISE * rng.standard_normal(len(levels)))


def qhat(x: np.ndarray, y: np.ndarray) -> float:
    """Matteson and James's Q-hat, from its definition, pair by pair."""
    n, m = len(x), len(y)
    between = sum(abs(a - b) for a in x for b in y)
    within_x = sum(abs(a - b) for a, b in combinations(x, 2))
    within_y = sum(abs(a - b) for a, b in combinations(y, 2))
    return (2 * between / (n + m) - (2 * m / ((n + m) * (n - 1)) * within_x if n > 1 else 0)
            - (2 * n / ((n + m) * (m - 1)) * within_y if m > 1 else 0))


def test_the_best_split_is_the_one_the_definition_of_qhat_picks():
    values = noisy([10.0] * 7 + [10.4] * 5, seed=3)
    brute = max(((tau, qhat(values[:tau], values[tau:kappa])) for tau in range(1, 12) for kappa in range(tau + 1, 13)),
                key=lambda item: item[1])
    index, value = edivisive._best_split(values, 0, len(values))
    assert index == brute[0] and value == pytest.approx(brute[1])


def test_a_3_percent_step_is_dated_at_its_first_night_with_its_size_and_p_value():
    nights = [10.0] * 20 + [10.3] * 5  # five nights after the step
    (point,) = edivisive.change_points(noisy(nights, seed=0))
    assert point.index == 20
    assert point.change == pytest.approx(0.03, abs=0.01)
    assert point.p_value <= edivisive.MAX_PVALUE
    # The premise: the same noise without the step has no change point.
    assert edivisive.change_points(noisy([10.0] * 25, seed=0)) == []


def test_pure_noise_rarely_shows_a_change_point_at_p_0001():
    # The split tested is the one Q-hat picked, so the per-series rate exceeds the nominal 0.001;
    # it stays rare (Otava makes the same trade).
    flagged = sum(bool(edivisive.change_points(noisy([10.0] * 30, seed=seed))) for seed in range(40))
    assert flagged <= 3
    # The premise: at a loose level the same series do show splits, so the level is what holds them back.
    assert sum(bool(edivisive.change_points(noisy([10.0] * 30, seed=seed), max_pvalue=0.2))
               for seed in range(40)) > flagged


def test_a_slow_drift_that_no_night_to_night_step_shows_is_caught():
    nights = 10.0 * (1.0 + 0.004 * np.arange(40))  # +0.4% a night, +16% over 40 nights
    values = noisy(nights, seed=5)
    # The premise: no night differs from the one before by more than regress's threshold.
    assert np.max(np.abs(values[1:] / values[:-1] - 1.0)) < DEFAULT_THRESHOLD
    points = edivisive.change_points(values)
    assert points and all(point.change > 0 for point in points)
    assert points[-1].mean_after / points[0].mean_before - 1.0 > 0.08


def test_short_series_are_not_searched():
    assert edivisive.change_points([1.0, 2.0]) == []
    records = [synthetic_record(f"run-{i}", 2.0 if i < 3 else 3.0, per_process=50, seed=i) for i in range(5)]
    assert len(records) < MIN_POINTS and find(records).points == []


def history_records(p50s, envs=None, fingerprints=None):
    return [synthetic_record(f"run-{index:02d}", p50, per_process=50, seed=index,
                             created_at=f"2026-11-{index + 1:02d}T03:00:00+00:00",
                             env=(envs or {}).get(index, ENV),
                             model_fingerprint=(fingerprints or {}).get(index, "sha256:" + "1" * 64))
            for index, p50 in enumerate(p50s)]


def test_each_point_lists_what_changed_in_its_environment_and_a_change_point_names_it():
    upgraded = {**ENV, "packages": {**ENV["packages"], "onnxruntime": "1.32.0"}}
    p50s = noisy([2.0] * 10 + [2.1] * 6, seed=1)
    envs = {index: upgraded for index in range(10, 16)}
    records = history_records(p50s, envs, fingerprints={15: "sha256:" + "2" * 64})
    changes = environment_changes(records)
    assert changes[10] == ("packages.onnxruntime: 1.31.1 -> 1.32.0",)
    assert changes[15] == ("model_fingerprint: sha256:" + "1" * 64 + " -> sha256:" + "2" * 64,)
    assert [index for index, change in enumerate(changes) if change] == [10, 15]

    history = find(records)
    (point,) = history.points
    assert (point.index, point.record.run_id) == (10, "run-10")
    assert point.environment == ("packages.onnxruntime: 1.31.1 -> 1.32.0",)
    assert point.to_json_dict()["environment_changes"] == ["packages.onnxruntime: 1.31.1 -> 1.32.0"]


def make_nightly_store(path, p50s):
    with Store.open(path) as store:
        for index, p50 in enumerate(p50s):
            run = store.create_run(host="bench-a", git_commit=f"c{index:02d}", command=["edgebench", "run"])
            store.add_record(synthetic_record(run.id, p50, per_process=50, seed=index, process_sd=0.002,
                                              created_at=run.started_at))
            store.finish_run(run.id, "finished")


def test_regress_adds_the_change_points_of_each_keys_history_without_failing_on_them(tmp_path):
    path, markdown = tmp_path / "store.db", tmp_path / "summary.md"
    make_nightly_store(path, noisy([2.0] * 10 + [2.06] * 5, seed=2))  # +3%: under the 5% threshold
    runner = CliRunner(env={"COLUMNS": "200"})
    result = runner.invoke(app, ["regress", "--store", str(path), "--markdown", str(markdown), "--json"])
    assert result.exit_code == 0, result.output  # the verdict is unchanged; the change point is shown
    payload = json.loads(result.stdout)
    (history,) = payload["histories"]
    assert history["points"] == 15
    (point,) = history["change_points"]
    assert point["index"] == 10 and point["change"] == pytest.approx(0.03, abs=0.015)
    text = markdown.read_text()
    assert "### Change points across history (1 of 1 keys" in text
    assert any(line.startswith("| torchvision:resnet18 b1 onnxruntime") and "+3." in line
               for line in text.splitlines())
    table = runner.invoke(app, ["regress", "--store", str(path)])
    assert "change point at run " in table.stdout

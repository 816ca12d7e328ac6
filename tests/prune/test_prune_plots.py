"""The pruner's figures: real PNGs through matplotlib's Agg, from a report.json-shaped dict."""

import copy

import matplotlib.image
import pytest

from edgebench.prune.step_plots import accuracy_vs_latency, final_point, macs_vs_latency, plot_steps, step_points

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def ratio(value, low, high):
    return {"eager": {"ratio": value, "ci95": [low, high]}}


def step(iteration, verdict, latency, accuracy, macs, **extra):
    return {"iteration": iteration, "group": f"layer{iteration}.conv1", "channels": [64, 56], "macs": macs,
            "params": 1000, "latency_ms": {"eager": 5.1 * latency}, "ratio_to_current": ratio(0.95, 0.9, 1.0),
            "ratio_to_baseline": ratio(latency, latency - 0.02, latency + 0.02), "accuracy": accuracy,
            "verdict": verdict, "reason": "...", **extra}


REPORT = {
    "model": "torchvision:resnet18?num_classes=10", "task": "digits", "target": "x86-cpu",
    "backends": ["eager", "onnxruntime"], "objective": "latency", "budget": 0.5, "max_accuracy_drop": 0.01,
    "criterion": "l1", "round_to": 8, "run_id": "r1", "store": "results/edgebench.db", "wall_s": 312.4,
    "stop_reason": "budget reached: 0.47 <= 0.5",
    "baseline": {"latency_ms": {"eager": 5.1}, "accuracy": 0.975, "macs": 37181962, "params": 11181642},
    "final": {"latency_ms": {"eager": 2.4}, "latency_ratio": {"eager": {"ratio": 0.47, "ci95": [0.45, 0.49]}},
              "accuracy": 0.968, "macs": 15000000, "params": 4000000},
    "steps": [
        step(1, "kept", 0.93, 0.97, 33000000),
        step(2, "rejected", 0.99, 0.95, 30000000),
        step(3, "rejected", 0.97, None, 31000000),  # rejected before fine-tuning
        step(4, "kept", 0.70, 0.969, 22000000),
        {**step(5, "rejected", 0.6, 0.96, 20000000), "ratio_to_baseline": None},  # not measured against the baseline
        {key: value for key, value in step(6, "rejected", 0.6, 0.96, 20000000).items() if key != "ratio_to_baseline"},
        {**step(7, "rejected", 0.6, 0.96, 20000000), "ratio_to_baseline": {"onnxruntime": {"ratio": 0.5}}},
        step(8, "kept", 0.47, 0.968, 15000000),
    ],
}


def test_points_skip_candidates_without_a_latency_ratio():
    points = step_points(REPORT, "eager")
    assert [point.label for point in points] == ["1", "2", "3", "4", "8"]
    assert [point.kept for point in points] == [True, False, False, True, True]
    first = points[0]
    assert (first.latency, first.low, first.high, first.accuracy) == pytest.approx((0.93, 0.91, 0.95, 0.97))
    assert first.macs == pytest.approx(33000000 / 37181962)
    assert points[2].accuracy is None
    final = final_point(REPORT, "eager")
    assert (final.latency, final.low, final.high, final.accuracy) == (0.47, 0.45, 0.49, 0.968)
    assert final_point({**REPORT, "final": {"accuracy": 0.9}}, "eager") is None


def test_plot_steps_writes_two_readable_pngs(tmp_path):
    paths = plot_steps(tmp_path / "out", REPORT)
    assert [path.name for path in paths] == ["accuracy_vs_latency.png", "macs_vs_latency.png"]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC
        height, width, channels = matplotlib.image.imread(path).shape
        assert height > 300 and width > 500 and channels in (3, 4)


def test_figures_name_the_model_backend_and_objective():
    for figure in (accuracy_vs_latency(REPORT), macs_vs_latency(REPORT)):
        axes = figure.axes[0]
        title = axes.get_title(loc="left")
        assert "torchvision:resnet18?num_classes=10" in title and "eager" in title and "objective latency" in title
        assert axes.get_xlabel().startswith("eager latency / baseline latency")


def test_accuracy_figure_draws_the_floor_and_the_kept_path():
    axes = accuracy_vs_latency(REPORT).axes[0]
    lines = {line.get_label(): line for line in axes.get_lines()}
    floor = lines["accuracy floor (baseline - 0.01)"]
    assert list(floor.get_ydata()) == [pytest.approx(0.965)] * 2
    # The path from the baseline through the kept steps, in order.
    path = next(line for line in axes.get_lines() if list(line.get_xdata()) == [1.0, 0.93, 0.70, 0.47])
    assert list(path.get_ydata()) == [0.975, 0.97, 0.969, 0.968]
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert {"rejected candidate", "kept step", "baseline", "final (0.47x latency)"} <= set(legend)


def test_macs_figure_draws_the_diagonal_on_equal_axes():
    axes = macs_vs_latency(REPORT).axes[0]
    diagonal = next(line for line in axes.get_lines() if line.get_label().startswith("MACs shrink as latency"))
    assert list(diagonal.get_xdata()) == list(diagonal.get_ydata())
    assert axes.get_xlim() == axes.get_ylim()
    low, high = axes.get_xlim()
    assert low < 15000000 / 37181962 and high > 1.0


def test_a_run_that_kept_nothing_still_draws(tmp_path):
    report = copy.deepcopy(REPORT)
    report["steps"] = [step(1, "rejected", 1.01, None, 30000000)]
    report["final"] = {"latency_ratio": {"eager": {"ratio": 1.0, "ci95": None}}, "accuracy": 0.975,
                       "macs": 37181962}
    report["baseline"]["accuracy"] = None  # a task without an accuracy: no floor, no baseline point
    for path in plot_steps(tmp_path, report):
        assert matplotlib.image.imread(path).ndim == 3

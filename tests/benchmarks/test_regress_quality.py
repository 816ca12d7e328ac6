"""benchmarks/regress_quality.py's logic that needs no measurement: the order of the trials and
nights, how a goal is judged, and the tables of a run stopped part-way (the script itself runs for
about 45 minutes; `--quick` is its smoke run)."""

from __future__ import annotations

from collections import Counter

from benchmark_scripts import load

regress_quality = load("regress_quality")


def test_the_cases_are_spread_over_the_run_so_a_stopped_run_keeps_each_share():
    order = regress_quality._schedule({"A/A": 400, "5%": 100, "10%": 100})
    assert Counter(order) == {"A/A": 400, "5%": 100, "10%": 100}
    first = Counter(order[:60])
    assert 38 <= first["A/A"] <= 42 and 9 <= first["5%"] <= 11 and 9 <= first["10%"] <= 11


def test_step_nights_are_interleaved_with_base_nights_then_one_night_per_slowdown():
    order = regress_quality._night_order(10, 5)
    assert order[-2:] == [1.05, 1.10]
    nights = order[:-2]
    assert Counter(nights) == {1.0: 10, 1.03: 5}
    # No step night stands next to another, and neither end is a run of step nights.
    steps = [index for index, variant in enumerate(nights) if variant == 1.03]
    assert all(later - earlier >= 2 for earlier, later in zip(steps, steps[1:]))


def test_a_goal_is_judged_on_the_point_estimate_and_the_interval_said_apart():
    goal = regress_quality._goal
    # 0 of 400: the point estimate meets 0.5%, but the interval's upper end (0.92%) is above it.
    assert goal(0, 400, 0.005, at_most=True) == "met (point estimate); the interval spans the goal"
    assert goal(0, 1000, 0.005, at_most=True) == "met (point estimate); the interval shows it met"
    assert goal(10, 400, 0.005, at_most=True) == "NOT met (point estimate); the interval shows it missed"
    assert goal(99, 100, 0.99, at_most=False) == "met (point estimate); the interval spans the goal"
    assert goal(85, 100, 0.95, at_most=False) == "NOT met (point estimate); the interval shows it missed"


def trial(number: int, case: str, outcome: str, sessions: int = 1, ratio: float = 1.0) -> dict:
    return {"trial": number, "case": case, "outcome": outcome, "sessions": sessions, "wall_s": 3.5 * sessions,
            "ratio": {"ratio": ratio, "ci95": [ratio - 0.01, ratio + 0.01], "rounds": 10}, "p_value": 0.5, "reason": "",
            "load_average": 1.0}


def test_an_interrupted_run_writes_the_tables_of_what_it_measured(tmp_path):
    results = {
        "environment": {"date": "2026-11-30", "cpu": "test CPU", "cpu_count": 2, "versions": {"python": "3.11"},
                        "git_commit": "abc"},
        "settings": {"model": "m", "input_shape": "3x8x8", "threads": 1, "quick": False, "threshold": 0.03,
                     "alpha": 0.01, "sessions": 3, "rounds": 10, "block_time": 0.1, "night_min_time": 5.0,
                     "night_max_time": 60.0, "night_processes": 3, "night_warmup": 1.0},
        "load_average": {"start": 1.0, "end": 1.5}, "interrupted": True, "wall_s": 90.0,
        "calibration": {"rounds": 20, "per_conv": 0.003,
                        "candidates": [{"convs": 4, "ratio": 1.012, "ci95": [1.0, 1.02], "rounds": 20}]},
        "variants": [{"target": 1.0, "convs": 0, "ratio": 1.001, "ci95": [0.99, 1.01], "rounds": 60},
                     {"target": 1.05, "convs": 16, "ratio": 1.048, "ci95": [1.04, 1.056], "rounds": 60}],
        "nights": [{"wall_s": 14.0}, {"wall_s": 16.0}], "change_points": None, "history": None,
        "trials": [trial(1, "A/A", "same", ratio=0.98), trial(2, "5%", "regression", ratio=1.06),
                   trial(3, "A/A", "undecided", 3, ratio=1.02)],
    }
    table = regress_quality._write(tmp_path, results).read_text()
    assert "**interrupted**" in table
    # the geometric mean of 0.98 and 1.02 is 0.9998
    assert "| A/A (identical files) | 2 | 1.000 | ±1.0% (10) | 0/2 = 0.0% (95% CI 0.0% to 84.2%) | 1 | 1 | 0 | 0 |" in table
    assert "| 5% slower (measured +4.8%) | 1 | 1.060 | ±0.9% (10) | 1/1 = 100.0%" in table
    assert "10% slower" not in table  # no trial of it yet
    assert "| paired confirmation, all cases | 3 | 3.5 | 1/3 = 33.3%" in table
    assert "| 2 | 15.0 | - |" in table  # the median night
    assert (tmp_path / "regress_quality.json").is_file()


def test_the_change_point_table_gives_the_p50_series_and_the_golden_ratio_series_side_by_side(tmp_path):
    def series(base, step, positions, false_points=()):
        return {"positions": [{"base_nights": 5 + i, "nights_to_date": n} for i, n in enumerate(positions)],
                "false_points": list(false_points), "base_values": base, "step_values": step,
                "base_log_sd": 0.143}

    results = {
        "environment": {"date": "2026-11-30", "cpu": "test CPU", "cpu_count": 2, "versions": {}, "git_commit": "abc"},
        "settings": {"model": "m", "input_shape": "3x8x8", "threads": 1, "quick": False, "threshold": 0.03,
                     "alpha": 0.01},
        "load_average": {"start": 0.5, "end": 0.6}, "interrupted": False, "wall_s": 60.0, "calibration": None,
        "variants": [{"target": 1.03, "convs": 4, "ratio": 1.037, "ci95": [1.01, 1.06], "rounds": 60}],
        "nights": [], "history": None, "trials": [],
        "change_points": {
            "p50": series([2.5, 3.8], [3.1, 2.8], [None, None], [{"index": 3, "change": 0.2, "p_value": 0.0004}]),
            "golden_ratio": series([0.99, 1.01], [1.03, 1.04], [2, None])},
    }
    table = regress_quality._write(tmp_path, results).read_text()
    assert "the 3% variant (measured +3.7%)" in table
    assert ("| p50 of each night's `edgebench run` | 2.500 to 3.800 ms, 14.3% | 3.100, 2.800 | 0 of 2 | - | "
            "1: night 4 +20.0% (p = 0.0004) |") in table
    assert "| 0.990 to 1.010, 14.3% | 1.030, 1.040 | 1 of 2 | 2 | 0 |" in table

"""benchmarks/search.py's floor: both searches' picks compare at one metric, lowered from the
baseline's floor only to the highest metric every fine-tuned front reaches."""

from __future__ import annotations

from benchmark_scripts import load

search = load("search")


def front(*metrics: float) -> dict:
    return {"final_front": [{"accuracy": metric} for metric in metrics]}


def test_the_baseline_floor_holds_when_both_fronts_reach_it():
    assert search.common_floor(0.30, [front(0.31, 0.25), front(0.35)]) == 0.30


def test_a_front_under_the_baseline_floor_lowers_it_to_what_every_front_reaches():
    assert search.common_floor(0.30, [front(0.22, 0.27), front(0.29, 0.10)]) == 0.27


def test_an_empty_front_leaves_no_floor_any_pick_reaches():
    assert search.common_floor(0.30, [front(), front(0.35)]) == float("-inf")

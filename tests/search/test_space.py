"""The search space: keep ratios snapped to aligned widths, and the objectives, fronts and
hypervolume the archive computes (pure: no worker, no training)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymoo.core.problem import Problem

from edgebench.search.archive import UNMEASURED, Archive, Individual, front_of, hypervolume
from edgebench.search.space import Space, SnapToWidths, UniformCutsFirst
from edgebench.sweep.paired import Ratio


def test_ratios_snap_to_aligned_widths_at_or_above_the_ratio_and_snapping_is_idempotent():
    space = Space({"a": 64, "b": 10, "c": 100}, min_keep=0.25, round_to=8)
    assert space.kept(np.array([0.3, 0.5, 0.71])) == (24, 8, 72)  # 19.2 -> 24; 5 -> 8; 71 -> 72
    assert space.kept(np.array([1.0, 1.0, 1.0])) == (64, 10, 100)  # full width, aligned or not
    assert space.kept(np.array([0.25, 0.25, 0.25])) == (16, 8, 32)  # never under the ratio asked for
    snapped = space.snap(np.array([0.3, 0.5, 0.71]))
    assert snapped.tolist() == [24 / 64, 8 / 10, 72 / 100]
    assert np.array_equal(space.snap(snapped), snapped)
    # The repair pymoo calls on every new individual does the same, row by row.
    repaired = SnapToWidths(space)._do(None, np.array([[0.3, 0.5, 0.71], [1.0, 0.26, 0.5]]))
    assert [space.kept(x) for x in repaired] == [(24, 8, 72), (64, 8, 56)]


def test_the_first_generation_is_half_uniform_cuts_from_min_keep_up_and_half_random():
    problem = Problem(n_var=3, n_obj=2, xl=0.25, xu=1.0)
    first = UniformCutsFirst().do(problem, 10, random_state=np.random.default_rng(0)).get("X")
    assert first.shape == (10, 3)
    # Every group at one share: 0.25, 0.4, 0.55, 0.7, 0.85.
    assert first[:5] == pytest.approx(np.array([[share] * 3 for share in (0.25, 0.4, 0.55, 0.7, 0.85)]))
    random = first[5:]
    assert ((0.25 <= random) & (random <= 1.0)).all() and len({tuple(row) for row in random}) == 5
    assert not np.allclose(random, random[:, :1])  # not uniform
    again = UniformCutsFirst().do(problem, 10, random_state=np.random.default_rng(0)).get("X")
    assert np.array_equal(first, again)  # the search's --seed decides the random half


def test_every_width_round_trips_through_its_ratio_despite_floating_point():
    # 0.29 * 100 is 28.999999999999996 in floating point: the cut must still keep 71, not 72.
    assert Space({"g": 100}, 0.0, 1).kept(np.array([0.71])) == (71,)
    for width in range(1, 130):
        space = Space({"g": width}, 0.0, 1)
        assert all(space.kept(space.ratios((kept,))) == (kept,) for kept in range(1, width + 1))


def test_the_channels_a_group_loses_are_its_lowest_scoring():
    space = Space({"a": 8, "b": 4}, min_keep=0.25, round_to=2)
    scores = {"a": torch.tensor([0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.6]), "b": torch.tensor([0.4, 0.3, 0.2, 0.1])}
    assert space.drops((4, 4), scores) == {"a": [1, 2, 3, 5]}  # b keeps all: no entry
    assert space.drops((8, 2), scores) == {"b": [2, 3]}


def _individual(number, accuracy, macs, latency):
    ratios = {"eager": Ratio(latency, latency * 0.9, latency * 1.1, 4) if latency is not None else None}
    return Individual(number, 1, (8,), accuracy, macs, 10, latency_ratio=ratios)


@pytest.mark.parametrize("objectives, expected", [("accuracy,latency", [1, 2]), ("accuracy,macs", [1, 3])])
def test_the_objectives_are_one_minus_accuracy_and_latency_or_macs_against_the_baseline(tmp_path, objectives, expected):
    archive = Archive(tmp_path, objectives, ["g"], ["eager"], baseline_macs=1000)
    # 1: accurate and slow; 2: fast but costly on paper; 3: cheap on paper but slow; 4: not measured.
    individuals = [_individual(1, 0.9, 900, 0.95), _individual(2, 0.8, 900, 0.5), _individual(3, 0.8, 300, 0.97),
                   _individual(4, 0.85, 950, None)]
    assert [i.number for i in archive.front(individuals)] == expected
    latency_points = Archive(tmp_path, "accuracy,latency", ["g"], ["eager"], 1000).points(individuals)
    assert latency_points[3].tolist() == pytest.approx([0.15, UNMEASURED])  # dominated by every measured model
    assert archive.best_latency(individuals, floor=0.85) == 0.95  # 4 has no latency; 2 and 3 are under the floor


def test_each_backend_is_its_own_latency_objective(tmp_path):
    archive = Archive(tmp_path, "accuracy,latency", ["g"], ["onnxruntime", "eager"], baseline_macs=1000)
    assert archive.n_objectives == 3 and archive.reference_point == (1.0, 1.1, 1.1)

    def individual(number, onnxruntime, eager):
        ratios = {"onnxruntime": Ratio(onnxruntime, onnxruntime * 0.9, onnxruntime * 1.1, 4),
                  "eager": None if eager is None else Ratio(eager, eager * 0.9, eager * 1.1, 4)}
        return Individual(number, 1, (8,), 0.9, 500, 10, latency_ratio=ratios)

    # 1 is the fastest on eager; 2 is slower on eager but much the fastest on ONNX Runtime. By the
    # slower backend's ratio alone (eager's for both) 2 would be dominated and dropped.
    fast_eager, fast_onnxruntime = individual(1, 0.6, 0.40), individual(2, 0.2, 0.45)
    slow_both = individual(3, 0.7, 0.5)
    assert [i.number for i in archive.front([fast_eager, fast_onnxruntime, slow_both])] == [1, 2]
    assert archive.points([fast_onnxruntime]).tolist() == [pytest.approx([0.1, 0.2, 0.45])]
    # A backend that could not measure a model dominates it on that objective only.
    assert archive.points([individual(4, 0.3, None)]).tolist() == [pytest.approx([0.1, 0.3, UNMEASURED])]
    # MACs stay one objective whatever the backends.
    assert Archive(tmp_path, "accuracy,macs", ["g"], ["onnxruntime", "eager"], 1000).n_objectives == 2


def test_the_hypervolume_is_the_area_the_front_dominates_up_to_the_reference_point():
    reference = (1.0, 1.1)
    assert hypervolume(np.array([[0.0, 0.0]]), reference) == pytest.approx(1.0 * 1.1)
    # Two rectangles up to (1.0, 1.1) overlapping in [0.5, 1.0] x [0.9, 1.1].
    overlapping = 0.5 * 0.6 + 0.8 * 0.2 - 0.5 * 0.2
    assert hypervolume(np.array([[0.5, 0.5], [0.2, 0.9]]), reference) == pytest.approx(overlapping)
    assert hypervolume(np.array([[0.5, 1.5]]), reference) == 0.0  # beyond the reference: adds nothing
    assert front_of(np.array([[0.5, 0.5], [0.2, 0.9], [0.6, 0.6]])) == [0, 1]
    # With two backends the volume is three-dimensional: a box up to (1.0, 1.1, 1.1).
    assert hypervolume(np.array([[0.5, 0.1, 0.6]]), (1.0, 1.1, 1.1)) == pytest.approx(0.5 * 1.0 * 0.5)

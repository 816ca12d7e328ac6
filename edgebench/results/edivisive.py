"""Change points in a series of numbers: E-divisive means with a t-test, as Apache Otava (formerly
Hunter, DataStax) finds them (Fleming et al., "Hunter: Using Change Point Detection to Hunt for
Performance Regressions", ICPE 2023; Otava's ``analysis.py`` and ``change_point_divisive/``).

Two steps:

1. Split. In sliding windows of ``WINDOW`` points (half a window apart), E-divisive (Matteson and
   James, 2014) repeatedly takes the split that maximises the energy statistic Q-hat over the
   segments between the change points found so far, and keeps it while a two-sample t-test of
   the segment's two sides is significant at a relaxed level (10 x ``max_pvalue``). The union
   over the windows are the weak change points.
2. Merge. Bottom-up, the weakest weak point (the largest p-value above ``max_pvalue``, or the
   smallest change when all pass) is removed and its neighbours are tested again against their
   new segments, until every point left is significant at ``max_pvalue``.

Like Otava, the significance of a candidate is a t-test of the two segments beside it rather
than E-divisive's permutation test: it works with the handful of points a nightly series has,
and it is deterministic. The test is Student's, with pooled variance, as Otava's
``TTestSignificanceTester`` (``scipy.stats.ttest_ind_from_stats``), except that each side's
standard deviation is the sample one (ddof = 1; Otava passes ddof = 0, which makes every test a
little bolder). Because the split tested is the one the statistic picked, the p-value is a
nominal one: on pure noise the chance of a false change point per series is larger than
``max_pvalue`` (Otava accepts the same).

Why not a library: ``signal-processing-algorithms`` 2.1.6 (MongoDB's E-divisive, which Hunter
built on) pins numpy < 2 and Python 3.11 exactly, pulls gevent and structlog, and since 2.0 offers
only the permutation test (the pluggable tester Hunter used is gone); Otava itself is not a
library to import. The algorithm fits in this module, on numpy and scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

MAX_PVALUE = 0.001
WINDOW = 50
_FIRST_PASS_FACTOR = 10  # Otava's weak change points: 10 x max_pvalue in the split step


@dataclass(frozen=True)
class Split:
    """A change point: ``index`` is the first point of the new level."""

    index: int
    mean_before: float
    mean_after: float
    std_before: float
    std_after: float
    p_value: float  # two-sided t-test of the segments on either side

    @property
    def change(self) -> float:
        """Relative change of the mean: after / before - 1."""
        return self.mean_after / self.mean_before - 1.0 if self.mean_before else math.inf

    @property
    def magnitude(self) -> float:
        """The larger of the forward and backward relative change, as Otava ranks points."""
        backward = self.mean_before / self.mean_after - 1.0 if self.mean_after else math.inf
        return max(abs(self.change), abs(backward))


def change_points(series: Sequence[float], max_pvalue: float = MAX_PVALUE, min_magnitude: float = 0.0,
                  window: int = WINDOW) -> list[Split]:
    """The change points of ``series`` (in order), significant at ``max_pvalue`` and changing the
    mean by more than ``min_magnitude`` (a fraction)."""
    values = np.asarray(series, dtype=np.float64)
    if len(values) < 3:  # two points can differ, but nothing says by how much is unusual
        return []
    weak = _split(values, window, min(max_pvalue * _FIRST_PASS_FACTOR, 0.5))
    return _merge(weak, values, max_pvalue, min_magnitude)


def _split(values: np.ndarray, window: int, pvalue: float) -> list[Split]:
    start, step, found = 0, max(1, window // 2), set()
    while start < len(values):
        end = min(start + window, len(values))
        new = _divide(values[start:end], pvalue)
        found.update(start + index for index in new)
        start = max(start + new[-1] if new else 0, start + step)
    indices = sorted(found)
    return [_test(values, index, indices) for index in indices]


def _divide(values: np.ndarray, pvalue: float) -> list[int]:
    """E-divisive on one window: the best split of any segment while it stays significant."""
    found: list[int] = []
    while True:
        bounds = [0, *found, len(values)]
        candidates = [_best_split(values, a, b) for a, b in pairwise(bounds) if b - a > 1]
        if not candidates:
            return found
        index, _ = max(candidates, key=lambda candidate: candidate[1])
        if _test(values, index, found).p_value > pvalue:
            return found
        found = sorted([*found, index])


def _best_split(values: np.ndarray, start: int, stop: int) -> tuple[int, float]:
    """The tau maximising Q-hat(values[start:tau], values[tau:kappa]) over start < tau < kappa <= stop.

    Q-hat(X, Y) = 2/(n+m) sum|X_i - Y_j| - 2m/((n+m)(n-1)) sum_{i<k}|X_i - X_k|
                  - 2n/((n+m)(m-1)) sum_{j<k}|Y_j - Y_k|   (n = |X|, m = |Y|),
    every pair sum read from one summed-area table of the segment's distance matrix."""
    segment = values[start:stop]
    size = len(segment)
    area = np.zeros((size + 1, size + 1))
    area[1:, 1:] = np.abs(segment[:, None] - segment[None, :]).cumsum(axis=0).cumsum(axis=1)
    tau = np.arange(1, size)[:, None]
    kappa = np.arange(2, size + 1)[None, :]
    n, m, total = tau, kappa - tau, kappa
    between = area[tau, kappa] - area[tau, tau]
    within_x = area[tau, tau] / 2.0
    within_y = (area[kappa, kappa] - 2.0 * area[tau, kappa] + area[tau, tau]) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):  # a one-point side has no pairs: its term is 0
        x_term = np.where(n > 1, 2.0 * m / (total * (n - 1)) * within_x, 0.0)
        y_term = np.where(m > 1, 2.0 * n / (total * (m - 1)) * within_y, 0.0)
    qhat = np.where(m > 0, 2.0 * between / total - x_term - y_term, -np.inf)
    row, column = np.unravel_index(int(np.argmax(qhat)), qhat.shape)
    return start + int(tau[row, 0]), float(qhat[row, column])


def _test(values: np.ndarray, index: int, indices: Sequence[int]) -> Split:
    """The t-test of the segments on either side of ``index``, bounded by the other ``indices``."""
    from scipy import stats as scipy_stats  # slow to import (1.5 s): kept off the CLI's start

    left_bound = max((i for i in indices if i < index), default=0)
    right_bound = min((i for i in indices if i > index), default=len(values))
    left, right = values[left_bound:index], values[index:right_bound]
    std_left = float(np.std(left, ddof=1)) if len(left) > 1 else 0.0
    std_right = float(np.std(right, ddof=1)) if len(right) > 1 else 0.0
    p_value = 1.0
    if len(left) + len(right) > 2:
        with np.errstate(divide="ignore", invalid="ignore"):
            _, p = scipy_stats.ttest_ind_from_stats(left.mean(), std_left, len(left), right.mean(), std_right,
                                                    len(right))
        p_value = 1.0 if math.isnan(p) else float(p)  # nan: both sides constant and equal
    return Split(index, float(left.mean()), float(right.mean()), std_left, std_right, p_value)


def _merge(points: list[Split], values: np.ndarray, max_pvalue: float, min_magnitude: float) -> list[Split]:
    points = list(points)
    while points:
        weakest = max(points, key=lambda point: point.p_value)
        if weakest.p_value < max_pvalue:
            weakest = min(points, key=lambda point: point.magnitude)
            if weakest.magnitude > min_magnitude:
                return points
        position = points.index(weakest)
        del points[position]
        indices = [point.index for point in points]
        # Removing a point widens its neighbours' segments: test them again.
        for neighbour in (position - 1, position):
            if 0 <= neighbour < len(points):
                points[neighbour] = _test(values, points[neighbour].index, indices)
    return points

"""Latency statistics: the summary, the median's confidence interval and the stability checks.

Board-side: Python 3.8, standard library plus numpy. The worker uses the interval to decide when
to stop; the workstation uses the same functions to summarise the raw samples it stores.

On shared machines slowdowns arrive in bursts, so the decisions rest on order statistics
(median, MAD, a distribution-free interval) rather than on mean and standard deviation.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

# Above these the record carries a warning (pyperf and trtexec warn on the same kind of spread).
CV_WARNING = 0.05
DRIFT_WARNING = 0.05
PROCESS_SPREAD_WARNING = 0.05
OUTLIER_MADS = 5.0
_MAD_TO_SIGMA = 1.4826
_EXACT_BINOMIAL_LIMIT = 200


def median_ci_ranks(n, confidence=0.95):
    """Zero-based ranks (lo, hi) of the order statistics bounding the median at ``confidence``.

    Distribution-free: the number of samples below the true median is Binomial(n, 1/2).
    Exact for small n, normal approximation above; returns None when n is too small.
    """
    if n < 6:
        return None
    alpha = 1.0 - confidence
    if n <= _EXACT_BINOMIAL_LIMIT:
        lo = _binomial_lower_rank(n, alpha / 2.0)
    else:
        z = NormalDist().inv_cdf(1.0 - alpha / 2.0)
        lo = int(math.floor(n / 2.0 - z * math.sqrt(n) / 2.0))
    lo = max(lo, 0)
    return lo, n - 1 - lo


def median_ci(sorted_samples, confidence=0.95):
    """(low, high) of the median of already sorted samples; the sample range when n is tiny."""
    n = len(sorted_samples)
    ranks = median_ci_ranks(n, confidence)
    if ranks is None:
        return float(sorted_samples[0]), float(sorted_samples[-1])
    return float(sorted_samples[ranks[0]]), float(sorted_samples[ranks[1]])


def relative_ci_halfwidth(sorted_samples, confidence=0.95):
    """Half the width of the median's interval as a fraction of the median."""
    low, high = median_ci(sorted_samples, confidence)
    median = float(np.median(sorted_samples))
    return (high - low) / 2.0 / median if median > 0 else float("inf")


def summarize(samples_ms):
    """Latency summary of raw samples (milliseconds): the record's ``latency_ms``."""
    data = np.sort(np.asarray(samples_ms, dtype=np.float64))
    p50, p90, p95, p99 = np.percentile(data, [50, 90, 95, 99])
    low, high = median_ci(data)
    return {
        "mean": float(data.mean()),
        "std": float(data.std(ddof=1)) if len(data) > 1 else 0.0,
        "min": float(data[0]),
        "p50": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(data[-1]),
        "ci95": [low, high],
    }


def stability(samples_ms):
    """Spread and drift measures of samples in the order they were taken."""
    data = np.asarray(samples_ms, dtype=np.float64)
    ordered = np.sort(data)
    median = float(np.median(ordered))
    mad = float(np.median(np.abs(data - median)))
    half = len(data) // 2
    drift = 0.0
    if half >= 3:
        drift = float(np.median(data[half:]) / np.median(data[:half]) - 1.0)
    mean = float(data.mean())
    return {
        "cv": float(data.std(ddof=1) / mean) if len(data) > 1 and mean > 0 else 0.0,
        "robust_cv": _MAD_TO_SIGMA * mad / median if median > 0 else 0.0,
        "drift": drift,
        "outlier_fraction": float(np.mean(data > median + OUTLIER_MADS * _MAD_TO_SIGMA * mad))
        if mad > 0
        else 0.0,
        "ci95_halfwidth": relative_ci_halfwidth(ordered),
    }


def process_spread(process_medians):
    """(max - min) / median of per-process medians: how much the process itself mattered."""
    if len(process_medians) < 2:
        return None
    middle = float(np.median(process_medians))
    return (max(process_medians) - min(process_medians)) / middle if middle > 0 else 0.0


def stability_warnings(checks, target_ci):
    """Human-readable warnings for the checks that failed."""
    warnings = []
    spread = checks.get("process_spread")
    if spread is not None and spread > PROCESS_SPREAD_WARNING:
        warnings.append(
            "processes disagree: per-process p50 %s ms (spread %.1f%%); the machine's state "
            "changed between worker processes"
            % (", ".join("%.3f" % m for m in checks["process_p50s"]), spread * 100)
        )
    if checks["cv"] > CV_WARNING:
        spread = "bursts of slow samples" if checks["robust_cv"] <= CV_WARNING else "wide spread"
        warnings.append(
            "unstable: coefficient of variation %.1f%% > %.0f%% (%s; robust CV %.1f%%, "
            "%.1f%% outliers)"
            % (
                checks["cv"] * 100,
                CV_WARNING * 100,
                spread,
                checks["robust_cv"] * 100,
                checks["outlier_fraction"] * 100,
            )
        )
    if abs(checks["drift"]) > DRIFT_WARNING:
        warnings.append(
            "drift: second half median %+.1f%% against the first half" % (checks["drift"] * 100)
        )
    if checks["ci95_halfwidth"] > target_ci:
        warnings.append(
            "imprecise: p50 95%% interval is +/-%.1f%%, wider than the +/-%.1f%% target"
            % (checks["ci95_halfwidth"] * 100, target_ci * 100)
        )
    return warnings


def _binomial_lower_rank(n, tail):
    """Largest r with P(X <= r) <= tail for X ~ Binomial(n, 1/2): the lower zero-based rank."""
    cumulative = 0.0
    scale = 0.5 ** n
    for k in range(n + 1):
        p_k = math.comb(n, k) * scale
        if cumulative + p_k > tail:
            return k - 1 if k > 0 else 0
        cumulative += p_k
    return 0

import numpy as np
import pytest
from scipy import stats as scipy_stats

from edgebench.board import stats


@pytest.mark.parametrize("n", [6, 7, 10, 25, 50, 100, 199, 200])
def test_exact_median_interval_covers_at_least_95_percent(n):
    lo, hi = stats.median_ci_ranks(n)
    assert hi == n - 1 - lo
    # P(lo-th order statistic <= median <= hi-th) = P(lo < X <= hi) for X ~ Binomial(n, 1/2)
    coverage = scipy_stats.binom.cdf(hi, n, 0.5) - scipy_stats.binom.cdf(lo, n, 0.5)
    assert coverage >= 0.95
    # and it is the tightest such interval
    tighter = scipy_stats.binom.cdf(hi - 1, n, 0.5) - scipy_stats.binom.cdf(lo + 1, n, 0.5)
    assert tighter < 0.95


@pytest.mark.parametrize("n", [201, 1000, 50_000])
def test_large_sample_interval_matches_binomial_quantiles(n):
    lo, hi = stats.median_ci_ranks(n)
    exact_lo = scipy_stats.binom.ppf(0.025, n, 0.5) - 1
    assert abs(lo - exact_lo) <= 1


def test_too_few_samples_fall_back_to_the_range():
    assert stats.median_ci_ranks(5) is None
    assert stats.median_ci([1.0, 2.0, 3.0]) == (1.0, 3.0)


def test_summary_percentiles_and_interval():
    samples = list(np.linspace(1.0, 100.0, 100))
    summary = stats.summarize(samples)
    assert summary["min"] == 1.0 and summary["max"] == 100.0
    assert summary["p50"] == pytest.approx(50.5)
    assert summary["p99"] == pytest.approx(np.percentile(samples, 99))
    low, high = summary["ci95"]
    assert low < summary["p50"] < high


def test_bursts_raise_cv_but_not_robust_cv():
    rng = np.random.default_rng(1)
    samples = rng.normal(10.0, 0.05, 1000)
    samples[100:130] *= 3.0  # a 0.3 s burst from another tenant
    checks = stats.stability(samples)
    assert checks["cv"] > stats.CV_WARNING
    assert checks["robust_cv"] < 0.01
    assert checks["outlier_fraction"] == pytest.approx(0.03, abs=0.005)
    warnings = stats.stability_warnings(checks, target_ci=0.01)
    assert any("bursts of slow samples" in w for w in warnings)


def test_drift_between_halves_is_reported():
    samples = [10.0] * 200 + [11.0] * 200
    checks = stats.stability(samples)
    assert checks["drift"] == pytest.approx(0.1)
    assert any(w.startswith("drift: second half median +10.0%") for w in stats.stability_warnings(checks, 0.01))


def test_steady_samples_give_no_warning():
    samples = np.random.default_rng(2).normal(5.0, 0.02, 500)
    assert stats.stability_warnings(stats.stability(samples), target_ci=0.01) == []


def test_imprecise_median_is_reported():
    samples = np.random.default_rng(3).normal(5.0, 1.0, 30)
    checks = stats.stability(samples)
    assert any(w.startswith("imprecise") for w in stats.stability_warnings(checks, target_ci=0.01))

"""The keep rule's tests on paired ratios: the screen, the retry's undecided and the confirmation."""

import math

import pytest
from scipy import stats

from edgebench.prune.keep_rule import CONFIRM_ALPHA, CONFIRM_MARGIN, confirmed, faster, p_not_faster, undecided
from edgebench.sweep.paired import ratio_of


def paired(logs):
    """A ratio whose per-round log ratios are ``logs`` (one-sample blocks against a reference of 1)."""
    return ratio_of([[math.exp(x)] for x in logs], [[1.0]] * len(logs))


@pytest.mark.parametrize("logs", [[-0.1, -0.05, 0.02, -0.08, -0.03], [0.1, -0.2, 0.05, 0.01], [-0.3, -0.28, -0.31]])
def test_the_p_value_is_the_one_sided_t_test_of_the_per_round_log_ratios(logs):
    expected = stats.ttest_1samp(logs, 0.0, alternative="less").pvalue
    assert p_not_faster(paired(logs)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("margin", [0.02, 0.05])
def test_with_a_margin_the_p_value_tests_against_one_minus_the_margin(margin):
    logs = [-0.03, -0.05, -0.02, -0.06, -0.04, -0.035]
    expected = stats.ttest_1samp(logs, math.log(1 - margin), alternative="less").pvalue
    assert p_not_faster(paired(logs), margin) == pytest.approx(expected, rel=1e-6)


def test_a_steady_one_percent_is_faster_than_1_but_not_confirmed_past_the_margin():
    # Two loaded copies of one file: about 1% apart, every round (narrow interval, the confirmation's 200 rounds).
    steady = paired([-0.01 + 0.002 * (-1) ** i for i in range(200)])
    assert p_not_faster(steady) < CONFIRM_ALPHA  # the premise: against 1 it would pass
    assert CONFIRM_MARGIN > 0.01 and not confirmed({"eager": steady})
    assert confirmed({"eager": paired([-0.05 + 0.002 * (-1) ** i for i in range(200)])})


def test_the_screen_the_retry_and_the_confirmation_on_every_backend():
    clear, marginal, noisy, slower = (paired([-0.3, -0.29, -0.31, -0.3]), paired([-0.1, -0.04, -0.06, -0.03]),
                                      paired([-0.4, 0.3, -0.5, 0.35]), paired([0.1, 0.12, 0.09, 0.11]))
    assert p_not_faster(marginal) < 0.025 and p_not_faster(marginal) > CONFIRM_ALPHA  # the contrast's premise
    assert faster({"eager": clear}) and confirmed({"eager": clear})
    assert faster({"eager": marginal}) and not confirmed({"eager": marginal})
    assert undecided({"eager": noisy}) and not faster({"eager": noisy})
    assert not undecided({"eager": slower}) and not faster({"eager": slower})
    # Every backend must agree; a backend that failed to measure is no gain.
    assert not faster({"eager": clear, "onnxruntime": slower}) and not confirmed({"eager": clear, "onnxruntime": None})
    assert not undecided({"eager": noisy, "onnxruntime": slower})
    assert not faster({}) and not confirmed({}) and not undecided({})

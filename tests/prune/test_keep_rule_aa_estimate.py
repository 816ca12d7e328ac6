"""benchmarks/keep_rule_aa.py's factorised estimate: per-test counts and the bound, on made-up ratios."""

import importlib.util
import math
from pathlib import Path

import pytest
from scipy import stats

from edgebench.sweep.paired import ratio_of

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "keep_rule_aa.py"
spec = importlib.util.spec_from_file_location("keep_rule_aa", SCRIPT)
keep_rule_aa = importlib.util.module_from_spec(spec)
spec.loader.exec_module(keep_rule_aa)


def shown(logs):
    """A copy's ratios as the script stores them, from per-round log ratios against the current model."""
    return keep_rule_aa._shown({"eager": ratio_of([[math.exp(x)] for x in logs], [[1.0]] * len(logs))})


CLEAR, MARGINAL, SLOWER = [-0.3, -0.29, -0.31, -0.3], [-0.1, -0.04, -0.06, -0.03], [0.1, 0.12, 0.09, 0.11]


def test_the_bound_is_the_product_of_the_clopper_pearson_upper_ends():
    found = keep_rule_aa.false_keep_bound(picked=30, iterations=100, confirmed=0, tests=600)
    assert found["estimate"] == 0
    # Clopper-Pearson upper ends: the beta quantile, and 1 - 0.025^(1/n) when nothing passed.
    assert found["upper"] == pytest.approx(stats.beta.ppf(0.975, 31, 70) * (1 - 0.025 ** (1 / 600)), rel=1e-6)
    assert keep_rule_aa.false_keep_bound(30, 100, 6, 600)["estimate"] == pytest.approx(0.3 * 0.01)
    assert keep_rule_aa.false_keep_bound(0, 0, 0, 0) == {"estimate": None, "upper": None}


def test_every_copy_of_every_run_is_one_test_of_its_kind_and_only_the_confirmations_pairing_counts():
    rows = [
        # The screen passed the clear copy: the old rule keeps it, the confirmation refutes it.
        {"screen": [shown(CLEAR), shown(MARGINAL), shown(SLOWER)], "retry": [], "old_keeps": True,
         "confirmation": shown(SLOWER), "new_keeps": False, "every_copy": [shown(SLOWER), shown(CLEAR), shown(SLOWER)]},
        # Nothing passed, two copies undecided: retried, the marginal one passes the retry and its confirmation.
        {"screen": [shown([-0.4, 0.3, -0.5, 0.35]), shown([-0.2, 0.3, -0.15, 0.02]), shown(SLOWER)],
         "retry": [shown(MARGINAL), shown(SLOWER)], "old_keeps": True, "confirmation": shown(CLEAR),
         "new_keeps": True, "every_copy": [shown(SLOWER)] * 3},
        {"screen": [shown(SLOWER)] * 3, "retry": [], "old_keeps": False, "confirmation": None, "new_keeps": False,
         "every_copy": [shown(SLOWER)] * 3},
    ]
    found = keep_rule_aa.factorised({"iterations": rows})
    assert found["looks"] == {"screen": {"runs": 3, "copies": 9, "below_1": 2, "confirmed": 1},
                              "retry": {"runs": 1, "copies": 2, "below_1": 1, "confirmed": 0},
                              "confirmation": {"runs": 2, "copies": 2, "below_1": 1, "confirmed": 1},
                              "every_copy": {"runs": 3, "copies": 9, "below_1": 1, "confirmed": 1}}
    # The screen's and the retry's tests ran at another pairing: the confirmation's factor leaves them out.
    assert (found["picked"], found["iterations"], found["confirmed"], found["tests"]) == (2, 3, 2, 11)
    assert found["estimate"] == pytest.approx(2 / 3 * 2 / 11)


def test_a_measured_run_is_judged_again_by_the_current_rule():
    # Steady 1% faster over 200 rounds: passes a test against 1, not the confirmation's margin.
    steady = shown([-0.01 + 0.002 * (-1) ** i for i in range(200)])
    assert steady["eager"]["p_not_faster"] < 0.01  # the premise: against 1 it passes
    measured = {"confirm_alpha": 0.01, "confirm_margin": 0.0,
                "iterations": [{"old_keeps": True, "confirmation": steady, "new_keeps": True},
                               {"old_keeps": False, "confirmation": None, "new_keeps": False}]}
    found = keep_rule_aa.rejudged(measured)
    assert [row["new_keeps"] for row in found["iterations"]] == [False, False]
    assert found["confirm_margin"] == keep_rule_aa.keep_rule.CONFIRM_MARGIN > 0

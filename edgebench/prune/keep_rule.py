"""When the pruner counts a candidate as faster than the current model: the keep rule.

A candidate's latency ratio to the current model (``edgebench.sweep.paired.Ratio``, a t interval
over the per-round ratios of one paired run) is judged on every backend:

- **Screening** (``faster``): the 95% interval lies below 1 on every backend, a one-sided test at
  2.5% per candidate. An iteration screens about a dozen candidates, and when none passes but some
  measured faster (``undecided``) it measures those again with more rounds; each look is another
  chance for a copy that is not faster to pass, so the screen alone keeps such a copy in far more
  than 2.5% of iterations (``benchmarks/keep_rule_aa.py`` measures how many).
- **Confirmation** (``confirmed``): the one candidate the screen chose is measured again, alone
  with the current model and the baseline, in a fresh paired run (a new worker process), and is
  kept only when that run's one-sided test says faster by more than ``CONFIRM_MARGIN`` at
  ``CONFIRM_ALPHA`` on every backend (the margin: two loaded copies of one file differ that much). Its
  blocks are short and its rounds many (``PruneConfig.confirm_pairing``, ``--confirm-rounds``
  and ``--confirm-block-time``): at equal time that narrows the interval, so a real gain of a few
  percent is not refuted for want of power (with the screen's 10 rounds of 0.1 s it was). The
  fresh run's data played no part in the choice, so however many candidates and looks the screen
  had, a candidate that is not faster is kept in at most ``CONFIRM_ALPHA`` of iterations, as far
  as the t interval and the margin hold on the machine (the interval alone did not: the A/A
  benchmark measures it). One extra paired run of three
  models per kept step is the whole cost; a Bonferroni or Holm correction over the screen's
  candidates and looks would instead widen every candidate's interval in every iteration.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Optional

from scipy import stats as scipy_stats

from edgebench.sweep.paired import Pairing, Ratio

# The intervals ``ratio_of`` computes are two-sided 95%: a ratio is "faster" when the upper end is below 1.
INTERVAL_CONFIDENCE = 0.95
# The goal: at most 1% of iterations keep a candidate that is not faster.
CONFIRM_ALPHA = 0.01
# How much faster the confirmation must find the candidate. Two loaded instances of one model file
# run a steady 1 to 5% apart here for a whole worker run (memory placement, not noise the rounds
# average away), so at the confirmation's narrow intervals a test against 1 passed 12 of 113 A/A
# copies (benchmarks/keep_rule_aa.py, 2026-12-01); against 0.98, none.
CONFIRM_MARGIN = 0.02

Ratios = Mapping[str, Optional[Ratio]]


def faster(ratios: Ratios) -> bool:
    """The screen: measured on every backend, with the 95% interval below 1 on each."""
    return bool(ratios) and all(r is not None and r.faster for r in ratios.values())


def undecided(ratios: Ratios) -> bool:
    """Measured faster on every backend but not significantly on some: worth a longer look."""
    return bool(ratios) and not faster(ratios) and all(r is not None and r.ratio < 1 for r in ratios.values())


def p_not_faster(ratio: Ratio, margin: float = 0.0) -> float:
    """One-sided p-value of "not faster by more than ``margin``" (a true ratio of 1 - margin or
    more), from the ratio's t interval over ``ratio.rounds`` rounds."""
    log_gap = math.log(ratio.ratio) - math.log(1.0 - margin)  # under 0: faster than the margin asks
    half = math.log(ratio.high) - math.log(ratio.ratio)
    if ratio.rounds < 2 or not math.isfinite(half):
        return 1.0
    if half <= 0:  # every round gave the same ratio
        return 0.0 if log_gap < 0 else 1.0
    standard_error = half / scipy_stats.t.ppf(0.5 + INTERVAL_CONFIDENCE / 2, ratio.rounds - 1)
    return float(scipy_stats.t.cdf(log_gap / standard_error, ratio.rounds - 1))


def confirmed(ratios: Ratios, alpha: float = CONFIRM_ALPHA, margin: float = CONFIRM_MARGIN) -> bool:
    """The confirmation: faster by more than ``margin`` at one-sided level ``alpha`` on every backend."""
    return bool(ratios) and all(r is not None and p_not_faster(r, margin) < alpha for r in ratios.values())


def describe(retry_rounds_factor: int, confirm_pairing: Pairing) -> dict:
    """The rule as ``report.json`` records it."""
    return {
        "name": "screen, then confirm in a fresh paired run",
        "screen": f"the {INTERVAL_CONFIDENCE:.0%} interval of the ratio to the current model below 1 on every "
                  f"backend; when none is but some measured faster, those again with {retry_rounds_factor}x "
                  "the rounds",
        "confirm": f"the chosen candidate, the current model and the baseline in a fresh paired run of "
                   f"{confirm_pairing.rounds} rounds of {confirm_pairing.block_s:g} s blocks: one-sided t test "
                   f"faster by more than {CONFIRM_MARGIN:.0%} at alpha {CONFIRM_ALPHA:g} on every backend",
        "confirm_alpha": CONFIRM_ALPHA,
        "confirm_margin": CONFIRM_MARGIN,
        "confirm_pairing": dataclasses.asdict(confirm_pairing),
    }

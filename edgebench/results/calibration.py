"""A/A calibration: the false-positive rate the paired confirmation actually achieves.

Each night ``regress --confirm`` (or a suite's ``[regress] aa_share``) checks a share of the
judged keys against themselves: tonight's kept file as both reference and contender, through the
confirmation's own code (``results.confirm``, "A/A checks"). Nothing differs, so every check
called a regression is a false positive, and the checks kept in the store add up, night after
night, to the rate the detector achieves on this machine.

Which keys
----------
The keys that can be measured again: measured fine tonight, with an ONNX file kept
(``confirm.measured_file_role``; a model built from code and measured eager has none). They are
put in a fixed order, by the sha256 of the key's text (model spec, machine, target, mode, backend,
device, precision, batch, input shape and method), and night n takes the next k of them,
positions n*k to n*k + k - 1, wrapping around: k = ceil(share x keys), at least one. n counts the
earlier runs of the suite (runs tagged ``suite=<name>`` holding the judged method's records; for
a regress without a suite, every earlier run holding them). So while the suite's keys stay the
same, each of them gets its turn within ceil(keys / k) nights; a key added or removed shifts the
order only around it.

The rate
--------
A check counts once, by the look that ended it (``env.confirm.look.final``, its contender-side
record): ``regression``, or not (``same``, ``undecided``, ``improvement``). Checks whose worker
failed, or that could not be measured at all, reached no verdict and do not count. The interval
is the exact (Clopper-Pearson) 95% interval of a binomial proportion
(``scipy.stats.binomtest(...).proportion_ci``): with 0 of 100 checks it still reaches 3.6%, which
is what 100 checks can tell. The history counts every check stored for the suite (those whose
judged run carries its tag), or every check in the store without a suite, tonight's included.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from edgebench.results.confirm import measured_file_role, stored_confirm_records
from edgebench.results.record import Record
from edgebench.results.regress import RegressReport, Verdict
from edgebench.results.select import Scope
from edgebench.results.store import RunInfo, Store

SUITE_TAG = "suite"  # the tag `edgebench run --suite` gives its runs


def check_share(share: float) -> float:
    """``share`` when it is a fraction from 0 to 1; ValueError saying so otherwise."""
    if not 0 <= share <= 1:
        raise ValueError(f"the A/A share is a fraction of the keys from 0 to 1 (0.1 = 10%), not {share:g}")
    return share


def eligible_keys(report: RegressReport) -> list[Verdict]:
    """The keys an A/A check can measure, in the rotation's order (the module docstring's rule)."""
    return sorted((verdict for verdict in report.verdicts
                   if verdict.contender.status == "ok" and measured_file_role(verdict.contender) is not None),
                  key=lambda verdict: _key_digest(verdict.contender))


def aa_keys(report: RegressReport, share: float, night: int) -> list[Verdict]:
    """The keys checked against themselves on night ``night`` (the module docstring's rule)."""
    eligible = eligible_keys(report)
    if share <= 0 or not eligible:
        return []
    count = min(len(eligible), max(1, math.ceil(share * len(eligible) - 1e-9)))
    return [eligible[(night * count + offset) % len(eligible)] for offset in range(count)]


def night_number(runs: Sequence[RunInfo], contender: RunInfo, method: str, suite: Optional[str] = None) -> int:
    """How many runs of the suite (or, without one, runs holding ``method`` records) started before
    ``contender``."""
    return sum(1 for run in runs
               if (run.started_at, run.id) < (contender.started_at, contender.id) and method in run.methods
               and (suite is None or run.tags.get(SUITE_TAG) == suite))


@dataclass(frozen=True)
class Tally:
    """A/A checks counted: how many called regression, out of how many."""

    regressions: int
    checks: int

    @property
    def rate(self) -> Optional[float]:
        return self.regressions / self.checks if self.checks else None

    @property
    def interval(self) -> Optional[tuple[float, float]]:
        """The 95% Clopper-Pearson interval of the rate; None without checks."""
        from scipy import stats as scipy_stats  # slow to import (1.5 s): kept off the CLI's start

        if not self.checks:
            return None
        ci = scipy_stats.binomtest(self.regressions, self.checks).proportion_ci(0.95, method="exact")
        return float(ci.low), float(ci.high)

    def __str__(self) -> str:
        if not self.checks:
            return "no A/A check"
        low, high = self.interval
        return (f"{self.regressions} of {self.checks} A/A check(s) called regression: {self.rate:.1%} "
                f"[{low:.1%}, {high:.1%}] (95% Clopper-Pearson)")

    def to_json_dict(self) -> dict[str, Any]:
        return {"regressions": self.regressions, "checks": self.checks, "rate": self.rate,
                "ci95": list(self.interval) if self.interval else None}


@dataclass(frozen=True)
class Check:
    """One stored A/A check, by its final look."""

    record: Record  # its contender-side record of the last session

    @property
    def look(self) -> dict[str, Any]:
        return self.record.env["confirm"]["look"]

    @property
    def contender_run(self) -> str:
        return self.record.env["confirm"]["contender_run"]


@dataclass(frozen=True)
class Calibration:
    """Tonight's A/A checks and the store's, for one suite (or the whole store)."""

    suite: Optional[str]
    checks: tuple[Check, ...]  # tonight's
    history: Tally

    @property
    def tonight(self) -> Tally:
        return tally(self.checks)

    def to_json_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "tonight": self.tonight.to_json_dict(), "history": self.history.to_json_dict()}


def stored_checks(store: Store, runs: Sequence[RunInfo], suite: Optional[str] = None,
                  scope: Scope = Scope()) -> list[Check]:
    """Every A/A check the store holds for ``suite`` (checks of runs tagged with it; every check
    without a suite), in ``scope``, oldest run first."""
    judged = {run.id for run in runs if run.tags.get(SUITE_TAG) == suite} if suite is not None else None
    checks = []
    for record in stored_confirm_records(store, runs):
        confirm = record.env.get("confirm") or {}
        if (confirm.get("aa") and (confirm.get("look") or {}).get("final")
                and record.env.get("pairing", {}).get("role") == "contender" and scope.admits(record)
                and (judged is None or confirm.get("contender_run") in judged)):
            checks.append(Check(record))
    return checks


def tally(checks: Iterable[Check]) -> Tally:
    outcomes = [check.look["outcome"] for check in checks]
    return Tally(sum(1 for outcome in outcomes if outcome == "regression"), len(outcomes))


def calibration(store: Store, runs: Sequence[RunInfo], tonight: str, suite: Optional[str] = None,
                scope: Scope = Scope(), *, by_confirm_run: bool = False) -> Calibration:
    """The rates from the stored checks: tonight's are the checks of the judged run ``tonight``
    (with ``by_confirm_run``, the checks a confirmation run ``tonight`` made), the history all of
    them. ``runs``: the store's, newest first, as ``Store.runs`` gives them."""
    checks = stored_checks(store, runs, suite, scope)
    tonights = [check for check in checks
                if (check.record.run_id if by_confirm_run else check.contender_run) == tonight]
    return Calibration(suite, tuple(tonights), tally(checks))


def _key_digest(record: Record) -> str:
    return hashlib.sha256("|".join(map(str, record.history_key)).encode()).hexdigest()

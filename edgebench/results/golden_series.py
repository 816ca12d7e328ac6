"""Each key's series of nightly paired ratios against the golden run, read back from the store,
and its change points.

A key's p50 varies about 13% from night to night on a shared machine, so a 3% step is lost in
its p50 series. The ratio of tonight's model to a pinned golden model measured in the same worker
the same night shares that night's machine state on both sides: its noise is the pairing's (1 to
2%), and change points over it can date a step of a few percent.

The series follows the nights of the key's p50 history (``change_points.key_histories``): for
each night, the ratio contender / golden of that night's golden pairing, as ``confirm`` marked it
(``GOLDEN_MARK``: the nightly golden pairing, or the final session of a confirmation with a golden
side; a night paired more than once counts by its latest pairing). Only nights paired against one
golden run make a series: the run named, else the one the key's latest pairing used; a ratio
against another golden model is another quantity. Each point is annotated with the environment
changes of its night, as the p50 series' points are (``change_points.find``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from edgebench.results.change_points import History, find
from edgebench.results.confirm import GOLDEN_MARK, stored_confirm_records
from edgebench.results.store import RunInfo, Store


@dataclass(frozen=True)
class GoldenHistory:
    """One key's golden ratios, oldest night first (``history.records`` are the nights' records)."""

    golden_run: str
    history: History

    def to_json_dict(self) -> dict[str, Any]:
        return {"golden_run": self.golden_run, "ratios": self.history.values, **self.history.to_json_dict()}


def stored_ratios(store: Store, runs: Sequence[RunInfo],
                  since: Optional[str] = None) -> dict[tuple, tuple[str, float]]:
    """(night's run id, key) -> (golden run id, ratio) of every golden pairing stored in
    confirmation runs started at or after ``since``; a later pairing of a night replaces an earlier."""
    found = {}
    for record in stored_confirm_records(store, runs, since):
        confirm = record.env.get("confirm") or {}
        mark = confirm.get(GOLDEN_MARK)
        if mark and record.env.get("pairing", {}).get("role") == "contender":
            key = tuple(tuple(value) if isinstance(value, list) else value for value in mark["key"])
            found[(confirm["contender_run"], key)] = (mark["golden_run"], float(mark["ratio"]["ratio"]))
    return found


def golden_histories(store: Store, runs: Sequence[RunInfo], histories: Mapping[tuple, History],
                     golden_run: Optional[str] = None) -> dict[tuple, GoldenHistory]:
    """The golden series of each key of ``histories`` (p50 histories, as ``change_points`` finds
    them) that has one, with its change points. ``runs`` newest first, as ``Store.runs`` gives them."""
    nights = {record.run_id for history in histories.values() for record in history.records}
    started = [run.started_at for run in runs if run.id in nights]
    if not started:
        return {}
    ratios = stored_ratios(store, runs, since=min(started))  # a night is paired after it started
    result = {}
    for key, history in histories.items():
        paired = [(record, ratios[(record.run_id, key)]) for record in history.records
                  if (record.run_id, key) in ratios]
        if not paired:
            continue
        pinned = golden_run or paired[-1][1][0]
        values = {record.run_id: ratio for record, (run, ratio) in paired if run == pinned}
        if values:
            series = [record for record, _ in paired if record.run_id in values]
            result[key] = GoldenHistory(pinned, find(series, value=lambda record: values[record.run_id]))
    return result

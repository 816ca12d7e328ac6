"""Did the board throttle during a measurement? Temperatures and clocks before, during, after.

The rule is ``edgebench.board.throttling``'s, the one a tegrastats log summary uses too: a CPU or
GPU clock that fell by more than its ``CLOCK_DROP`` between the start and the end of the timed
loop (both read under load: the loop is the load), or a temperature at or over the target's limit
(the rule's default when the target sets none), marks the record ``throttled: true`` with a
warning saying which. With no readings at all (no thermal zones, no cpufreq, no tegrastats)
``throttled`` stays null: not monitored, rather than "fine".
"""

from __future__ import annotations

from statistics import mean
from typing import Optional

from edgebench.board import throttling


def assess(snapshots: list[dict], board_states: list[dict], limit_c: Optional[float]) -> tuple[Optional[bool], list[str]]:
    """``snapshots``: each process's ``{"start": state, "end": state}``; ``board_states``: the
    tegrastats readings inside the windows; ``limit_c``: the target's limit, if it has one.
    Returns (throttled, warnings)."""
    warnings: list[str] = []
    seen_any = False
    for pair in snapshots:
        start, end = pair.get("start") or {}, pair.get("end") or {}
        seen_any |= bool(start.get("temperatures_c") or start.get("cpu_mhz") or start.get("gpu_mhz"))
        warnings += _clock_drops(start, end)
    states = [state for pair in snapshots for state in (pair.get("start"), pair.get("end")) if state] + board_states
    seen_any |= bool(board_states)
    if board_states:
        warnings += _clock_drops(board_states[0], board_states[-1])
    warnings += _over_limit(states, limit_c)
    if not seen_any:
        return None, []
    return bool(warnings), list(dict.fromkeys(warnings))


def _clock_drops(start: dict, end: dict) -> list[str]:
    drops = []
    for name, before, after in (
        ("CPU", _mean(start.get("cpu_mhz")), _mean(end.get("cpu_mhz"))),
        ("GPU", start.get("gpu_mhz"), end.get("gpu_mhz")),
    ):
        if throttling.clock_fell(before, after):
            drops.append(f"throttled: {name} clock fell from {before:.0f} to {after:.0f} MHz during the measurement")
    return drops


def _over_limit(states: list[dict], limit_c: Optional[float]) -> list[str]:
    hottest: dict[str, float] = {}
    for state in states:
        for sensor, celsius in (state.get("temperatures_c") or {}).items():
            hottest[sensor] = max(celsius, hottest.get(sensor, celsius))
    which = "" if limit_c is not None else " default"
    return [f"throttled: {sensor} reached {celsius:.1f} C, at or over the{which} {throttling.limit_c(limit_c):g} C limit"
            for sensor, celsius in sorted(hottest.items()) if throttling.too_hot(sensor, celsius, limit_c)]


def _mean(values: Optional[list[float]]) -> Optional[float]:
    return mean(values) if values else None

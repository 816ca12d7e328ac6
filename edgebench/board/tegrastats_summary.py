"""Summary of a whole tegrastats log: power per rail, total power and energy, memory, temperatures,
GPU and memory-controller load, and signs of throttling.

The lines are parsed by the board-side parser (``edgebench.board.tegrastats``) and judged by the
throttling rule a measurement's record uses too (``edgebench.board.throttling``); this module only
aggregates. What each number means and how it is computed: ``docs/tegrastats.md``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from statistics import fmean
from typing import Any

from edgebench.board import throttling
from edgebench.board.tegrastats import (
    TegrastatsReader,
    TegrastatsSample,
    input_rails,
    total_power_mw,
)

DEFAULT_INTERVAL_MS = 1000.0  # tegrastats' own default sampling interval
MOST_COMMON_UNKNOWN_TOKENS = 20


class LogError(ValueError):
    """The log cannot be summarised (missing, empty, no tegrastats line, a bad interval)."""


def summarize_log(path: str | Path, interval_ms: float | None = None,
                  limit_c: float | None = None) -> dict[str, Any]:
    """Summarize a tegrastats log. ``interval_ms`` is the sampling interval, used for energy only
    when the lines carry no timestamps; ``limit_c`` the board's temperature limit, when known.
    Raises ``LogError`` for a missing or empty file, a file with no tegrastats line, or an
    interval that is not positive."""
    if interval_ms is not None and interval_ms <= 0:
        raise LogError(f"--interval-ms must be positive, got {interval_ms:g}")
    lines = _read_lines(Path(path))
    reader = TegrastatsReader(lines)
    samples, line_numbers = [], []
    for sample in reader:
        samples.append(sample)
        line_numbers.append(reader.line_num)
    if not samples:
        raise LogError(f"no tegrastats line in {path} ({len(lines)} lines, none readable)")
    notes: list[str] = []
    summary = {
        "path": str(path),
        "line_count": len(lines),
        "sample_count": len(samples),
        "start": _iso(samples[0].timestamp),
        "end": _iso(samples[-1].timestamp),
        "rails": _rails(samples),
        "total_power": _total_power(samples, notes),
        "energy": _energy(samples, interval_ms, notes),
        "ram_used_mb": _mean_max([s.ram_used_mb for s in samples]),
        "temperatures_max_c": _hottest(samples),
        "offline_sensors": sorted({name for s in samples for name in s.offline_sensors}),
        "gpu_load_pct": _mean_max([_load(s, "GR3D_FREQ") for s in samples]),
        "emc_load_pct": _mean_max([_load(s, "EMC_FREQ") for s in samples]),
        "throttling": _clock_drops(samples, line_numbers) + _hot_sensors(samples, line_numbers, limit_c),
        "unknown_tokens": dict(Counter(t for s in samples for t in s.unparsed)
                               .most_common(MOST_COMMON_UNKNOWN_TOKENS)),
        "unparsed_lines": [{"line_number": e.line_number, "text": e.line} for e in reader.errors],
        "notes": notes,
    }
    notes.append(throttling.describe(limit_c))
    return summary


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise LogError(f"no such file: {path}" if not path.exists() else f"not a file: {path}")
    # Odd bytes become unknown tokens instead of stopping the summary.
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not any(line.strip() for line in lines):
        raise LogError(f"{path} is empty")
    return lines


def _iso(timestamp: datetime | None) -> str | None:
    return timestamp.isoformat() if timestamp else None


def _mean_max(values: Iterable[float | None]) -> dict[str, float] | None:
    present = [v for v in values if v is not None]
    return {"mean": fmean(present), "max": max(present)} if present else None


def _rails(samples: Sequence[TegrastatsSample]) -> dict[str, dict[str, float]]:
    """Mean and max of each rail's current value, over the lines that carry the rail."""
    result = {}
    for name in dict.fromkeys(name for s in samples for name in s.rails):  # first-seen order
        values = [s.rails[name]["current_mw"] for s in samples if name in s.rails]
        result[name] = {"mean_mw": fmean(values), "max_mw": max(values)}
    return result


def _total_power(samples: Sequence[TegrastatsSample], notes: list[str]) -> dict[str, Any] | None:
    stats = _mean_max([total_power_mw(s) for s in samples])
    if stats is None:
        notes.append("no power rails in the log: no total power, no energy")
        return None
    rule = sorted({" + ".join(input_rails(s)) for s in samples if s.rails})
    notes.append(f"total power = {' | '.join(rule)}")
    return {"mean_mw": stats["mean"], "max_mw": stats["max"], "input_rails": rule}


def _energy(samples: Sequence[TegrastatsSample], interval_ms: float | None,
            notes: list[str]) -> dict[str, Any] | None:
    """Trapezoid over the lines' timestamps, or over a fixed interval where lines have none."""
    powered = [s for s in samples if total_power_mw(s) is not None]
    if len(powered) < 2:
        if powered:
            notes.append("one line with power: no time span to integrate energy over")
        return None
    times, source = _times_s(powered, interval_ms)
    watts = [total_power_mw(s) / 1000 for s in powered]
    joules = sum((watts[i] + watts[i + 1]) / 2 * (times[i + 1] - times[i]) for i in range(len(times) - 1))
    notes.append(f"energy from {source}")
    return {"joules": joules, "duration_s": times[-1] - times[0], "time_source": source}


def _times_s(samples: Sequence[TegrastatsSample], interval_ms: float | None) -> tuple[list[float], str]:
    """Seconds since the first line, and where they came from."""
    stamps = [s.timestamp for s in samples]
    if all(stamps) and all(a <= b for a, b in zip(stamps, stamps[1:])):
        ignored = f" (--interval-ms {interval_ms:g} not used)" if interval_ms else ""
        return [(t - stamps[0]).total_seconds() for t in stamps], "timestamps" + ignored
    step_ms = interval_ms or DEFAULT_INTERVAL_MS
    if interval_ms:
        source = f"the interval given, {step_ms:g} ms"
    else:
        source = (f"tegrastats' default interval, {step_ms:g} ms, assumed "
                  "(pass --interval-ms if the log was taken at another)")
    if any(stamps):
        source += "; the timestamps were not used: some lines lack one or they go back in time"
    return [i * step_ms / 1000 for i in range(len(samples))], source


def _hottest(samples: Sequence[TegrastatsSample]) -> dict[str, float]:
    hottest: dict[str, float] = {}
    for s in samples:
        for sensor, celsius in s.temperatures.items():
            hottest[sensor] = max(celsius, hottest.get(sensor, celsius))
    return hottest


def _load(sample: TegrastatsSample, engine: str) -> int | None:
    return sample.engines.get(engine, {}).get("load")


def _clocks(sample: TegrastatsSample) -> dict[str, tuple[int, int]]:
    """(load %, MHz) of the GPU and of each online CPU core that reports both."""
    clocks = {f"CPU{i}": core for i, core in enumerate(sample.cpus) if core and core[1] is not None}
    gpu = sample.engines.get("GR3D_FREQ", {})
    mhz = gpu.get("freq_mhz")
    if gpu.get("load") is not None and mhz:
        clocks["GPU"] = (gpu["load"], max(mhz) if isinstance(mhz, list) else mhz)
    return clocks


def _clock_drops(samples: Sequence[TegrastatsSample], line_numbers: Sequence[int]) -> list[dict[str, Any]]:
    """Per unit: how often its clock fell from one line to the next with the unit loaded on both."""
    drops: dict[str, dict[str, Any]] = {}
    for before, after, line in zip(samples, samples[1:], line_numbers[1:]):
        previous = _clocks(before)
        for unit, (load, mhz) in _clocks(after).items():
            old = previous.get(unit)
            if old and throttling.loaded(min(old[0], load)) and throttling.clock_fell(old[1], mhz):
                event = drops.setdefault(unit, {"kind": "clock_drop", "unit": unit, "count": 0, "first_line": line,
                                                "first": f"{old[1]} -> {mhz} MHz at {load}% load"})
                event["count"] += 1
    return list(drops.values())


def _hot_sensors(samples: Sequence[TegrastatsSample], line_numbers: Sequence[int],
                 limit_c: float | None) -> list[dict[str, Any]]:
    """Per sensor: how many lines read at or above the limit, and the hottest reading."""
    hot: dict[str, dict[str, Any]] = {}
    for sample, line in zip(samples, line_numbers):
        for sensor, celsius in sample.temperatures.items():
            if not throttling.too_hot(sensor, celsius, limit_c):
                continue
            event = hot.setdefault(sensor, {"kind": "temperature", "sensor": sensor, "count": 0,
                                            "first_line": line, "max_c": celsius})
            event["count"] += 1
            event["max_c"] = max(event["max_c"], celsius)
    return list(hot.values())

"""Pairing records and the statistics of their ratio.

``compare`` pairs baseline and contender records that agree on the comparison key
(``results.key``: model, fingerprint, machine, batch, precision, method, and whichever of
target, mode, backend and device the two selectors do not vary) and gives each pair's speedup, baseline p50 / contender p50, with a
bootstrap 95% interval, plus the energy ratio where both records measured energy.

The speedup's interval counts the variation between each record's worker processes
(``intervals.speedup_interval``): on a shared machine separate processes differ by several
percent, which no resampling of one record's samples can see. The bootstrap interval of the
samples alone, below, is kept beside it (``speedup_ci_samples``) and is the interval where
neither side's processes widen it; a record of one process says so in the pair's notes.

The bootstrap is an m-out-of-n bootstrap so that records of 10^4 samples stay fast: each of
2000 resamples draws m = min(n, 2000) samples with replacement, and the deviations of the
resampled statistic are scaled by sqrt(m / n), which is valid for quantiles and the mean
(Bickel and Sakov, 2008). The seed is fixed, so the same records give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from edgebench.errors import UsageError
from edgebench.board import stats
from edgebench.results.intervals import Level, P50Interval, p50_interval, process_count, speedup_interval
from edgebench.results.key import key_fields, key_of
from edgebench.results.record import Record
from edgebench.results.select import SELECTABLE_FIELDS, Selector

METRICS = ("p50", "p90", "p99", "mean")
RESAMPLES = 2000
SAMPLE_CAP = 2000
SEED = 20240501
CONFIDENCE = 0.95
_PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0}
_RESAMPLES_PER_BLOCK = 500  # bounds the memory of one block to 500 x SAMPLE_CAP floats

Side = Literal["baseline", "contender"]


@dataclass(frozen=True)
class Pair:
    """One baseline record against one contender record of the same comparison key."""

    key: Mapping[str, Any]
    baseline: Record
    contender: Record
    speedup: float
    speedup_ci: tuple[float, float]  # worker processes counted (intervals.speedup_interval)
    energy_ratio: float | None
    notes: tuple[str, ...]
    speedup_ci_samples: tuple[float, float] = (math.nan, math.nan)  # the bootstrap of the samples alone
    interval: Level = "samples"  # "samples" when either record is one worker process

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "key": dict(self.key),
            "baseline": _side_json(self.baseline),
            "contender": _side_json(self.contender),
            "speedup": self.speedup,
            "speedup_ci95": list(self.speedup_ci),
            "speedup_ci95_samples": list(self.speedup_ci_samples),
            "interval": self.interval,
            "energy_ratio": self.energy_ratio,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Unpaired:
    """A record left without a partner, and why."""

    side: Side
    record: Record
    reason: str


@dataclass(frozen=True)
class Comparison:
    varied: tuple[str, ...]
    pairs: list[Pair]
    unpaired: list[Unpaired]


def varied_fields(baseline: Selector, contender: Selector) -> tuple[str, ...]:
    """Fields both selectors name with different values: these are what is being compared.

    A field only one side names stays in the key, so ``--baseline run=A --contender run=B,eager``
    pairs eager with eager."""
    return tuple(
        name for name in SELECTABLE_FIELDS
        if name in baseline.fields and name in contender.fields
        and baseline.fields[name] != contender.fields[name]
    )


def latest_per_key(records: Iterable[Record], fields: Sequence[str]) -> dict[tuple, Record]:
    """For each key, the most recently measured record (ties: the later run id, then stored order)."""
    latest: dict[tuple, Record] = {}
    for record in records:
        key = key_of(record, fields)
        current = latest.get(key)
        if current is None or (record.created_at, record.run_id) >= (current.created_at, current.run_id):
            latest[key] = record
    return latest


def compare(baseline: Sequence[Record], contender: Sequence[Record], varied: Sequence[str]) -> Comparison:
    """Pair the latest baseline and contender record of each key (``KEY_FIELDS`` minus ``varied``)."""
    fields = key_fields(varied)
    base_by_key = latest_per_key(baseline, fields)
    cont_by_key = latest_per_key(contender, fields)
    pairs: list[Pair] = []
    unpaired: list[Unpaired] = []
    for key, base in base_by_key.items():
        cont = cont_by_key.get(key)
        if cont is None:
            unpaired.append(Unpaired("baseline", base, _no_partner(base, cont_by_key.values(), "contender", fields)))
        elif base is cont:
            raise UsageError(
                f"baseline and contender both select {describe(base)}; name what differs between them, "
                "e.g. --baseline eager --contender onnxruntime"
            )
        elif base.status != "ok" or cont.status != "ok":
            unpaired += [Unpaired(side, r, _not_measured(r)) for side, r in (("baseline", base), ("contender", cont))
                         if r.status != "ok"]
        else:
            pairs.append(pair(base, cont, dict(zip(fields, key))))
    unpaired += [
        Unpaired("contender", cont, _no_partner(cont, base_by_key.values(), "baseline", fields))
        for key, cont in cont_by_key.items() if key not in base_by_key
    ]
    return Comparison(tuple(varied), pairs, unpaired)


def pair(baseline: Record, contender: Record, key: Mapping[str, Any]) -> Pair:
    speedup = baseline.latency_ms.p50 / contender.latency_ms.p50
    samples = ratio_interval(baseline.samples_ms, contender.samples_ms, "p50")
    interval, level = speedup_interval(baseline, contender, samples)
    return Pair(
        key=key,
        baseline=baseline,
        contender=contender,
        speedup=speedup,
        speedup_ci=interval,
        energy_ratio=energy_ratio(baseline, contender),
        notes=tuple(_spread_notes(baseline, contender)),
        speedup_ci_samples=samples,
        interval=level,
    )


def energy_ratio(baseline: Record, contender: Record) -> float | None:
    """Baseline / contender energy per inference, oriented like the speedup: > 1, the contender uses less."""
    base, cont = (_energy_per_inference(r) for r in (baseline, contender))
    return None if base is None or cont is None or cont <= 0 else base / cont


def metric_of(samples: np.ndarray, metric: str) -> np.ndarray:
    """The metric along the last axis, computed as ``stats.summarize`` does (linear percentiles)."""
    if metric == "mean":
        return samples.mean(axis=-1)
    return np.percentile(samples, _PERCENTILES[metric], axis=-1)


def log_metric_deviations(samples: Sequence[float], metric: str, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap deviations of log(metric) from its full-sample value, scaled to the full n."""
    data = np.asarray(samples, dtype=np.float64)
    n = len(data)
    m = min(n, SAMPLE_CAP)
    blocks = [
        metric_of(data[rng.integers(0, n, size=(_RESAMPLES_PER_BLOCK, m))], metric)
        for _ in range(RESAMPLES // _RESAMPLES_PER_BLOCK)
    ]
    return (np.log(np.concatenate(blocks)) - math.log(metric_of(data, metric))) * math.sqrt(m / n)


def ratio_interval(
    numerator: Sequence[float], denominator: Sequence[float], metric: str, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Percentile bootstrap interval of metric(numerator) / metric(denominator)."""
    rng = np.random.default_rng(SEED)  # one generator: the two sides draw different indices
    log_ratio = math.log(metric_of(np.asarray(numerator), metric) / metric_of(np.asarray(denominator), metric))
    spread = log_metric_deviations(numerator, metric, rng) - log_metric_deviations(denominator, metric, rng)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(spread, [tail, 1.0 - tail])
    return math.exp(log_ratio + low), math.exp(log_ratio + high)


def key_text(record: Record) -> str:
    """The record's key in words (the fingerprint left out: the model name stands for it; the
    machine too: the target names it in words). The method only when it is not the usual sweep."""
    method = "" if record.method == "sweep" else f" ({record.method})"
    return (f"{record.model} b{record.batch} {record.backend} {record.precision} "
            f"{record.target}/{record.mode}/{record.device}{method}")


def describe(record: Record) -> str:
    """One record in words, for messages."""
    return f"{key_text(record)} (run {record.run_id})"


def _no_partner(record: Record, others: Iterable[Record], other_side: Side, fields: Sequence[str]) -> str:
    differences = [(_differing(record, other, fields), other) for other in others]
    if not differences:
        return f"no {other_side} record"
    fewest, nearest = min(differences, key=lambda item: len(item[0]))
    detail = ", ".join(f"{name} ({getattr(record, name)} vs {getattr(nearest, name)})" for name in fewest)
    return f"no {other_side} record with the same key; the nearest, {describe(nearest)}, differs in {detail}"


def _differing(record: Record, other: Record, fields: Sequence[str]) -> list[str]:
    return [name for name in fields if getattr(record, name) != getattr(other, name)]


def _not_measured(record: Record) -> str:
    return f"{record.status}: {record.error}" if record.error else record.status


def _spread_notes(baseline: Record, contender: Record) -> list[str]:
    notes = []
    for side, record in (("baseline", baseline), ("contender", contender)):
        spread = record.stability.process_spread if record.stability else None
        if spread is not None and spread > stats.PROCESS_SPREAD_WARNING:
            notes.append(f"{side} worker processes disagree by {spread:.1%}; the interval counts it")
        if record.method == "sweep" and process_count(record) == 1:
            notes.append(f"{side} is one worker process: the interval covers its sample noise only")
    return notes


def _energy_per_inference(record: Record) -> float | None:
    value = (record.energy or {}).get("mj_per_inference")
    return None if value is None else float(value)


def _side_json(record: Record) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        **{name: getattr(record, name) for name in SELECTABLE_FIELDS},
        "p50_ms": record.latency_ms.p50,
        **_interval_json(p50_interval(record)),
        "mj_per_inference": _energy_per_inference(record),
        "process_p50s_ms": list(record.stability.process_p50s) if record.stability else [],
    }


def _interval_json(interval: P50Interval) -> dict[str, Any]:
    return {"p50_ci95_ms": [interval.low, interval.high], "p50_ci95_samples_ms": list(interval.samples),
            "p50_interval": interval.level}

"""The p50 interval a record shows: the variation between its worker processes included.

A record's stored ``latency_ms.ci95`` is the distribution-free interval of the median of its
pooled samples: it covers sample noise only. On a shared machine the process is the larger
part: three invocations of ResNet-18 in eager each reported about +/-0.5% while their p50s were
29.1, 25.0 and 29.6 ms. So the interval every table, JSON and report shows is taken at the level
where the measurement repeats, the worker process (the level pyperf spreads a benchmark over, and
the level Kalibera and Jones, "Rigorous benchmarking in reasonable time", 2013, put the
interval at):

- with k >= 2 processes, a t interval of the log per-process p50s
  (``stability.process_p50s``): half-width t(0.975, k - 1) x s / sqrt(k) on the log scale,
  around the record's p50. Each process's p50 carries its own sample noise, so this term already
  holds both levels; where it comes out narrower than the samples' interval (processes agreeing
  by chance), the samples' interval is shown, as the wider of the two;
- with one process, the samples' interval, flagged ``level = "samples"``: nothing measured how
  much a fresh process would move it.

Why not a hierarchical bootstrap (resample processes, then samples in each): with the 3
processes a run makes by default there are 10 distinct resamples of the processes, and the
bootstrap has no small-sample correction; it comes out narrower than the t interval exactly
where the processes are few, which is always. The t interval needs only each process's p50,
which every record since processes were introduced carries, so records stored before this
module existed get the same interval on reading: nothing new is stored.

The samples' interval stays under its own name (``ci95_samples`` in JSON) and the pair's speedup
interval follows the same rule (``speedup_interval``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np

from edgebench.results.record import Record

CONFIDENCE = 0.95
_Z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2.0)

Level = Literal["processes", "samples"]


@dataclass(frozen=True)
class P50Interval:
    p50: float
    low: float
    high: float
    level: Level  # processes: the variation between worker processes is counted; samples: one process
    samples: tuple[float, float]  # the samples' interval alone (the record's latency_ms.ci95)
    processes: int

    @property
    def halfwidth(self) -> float:
        """Half the width as a fraction of the p50."""
        return (self.high - self.low) / 2.0 / self.p50


def process_count(record: Record) -> int:
    return max(1, len(record.stability.process_p50s)) if record.stability else 1


def level_of(record: Record) -> Level:
    return "processes" if process_count(record) > 1 else "samples"


def log_p50_variance(record: Record) -> tuple[float, float]:
    """The variance of log p50 the shown interval rests on and its degrees of freedom (inf: the
    samples' interval, read as a normal one)."""
    low, high = record.latency_ms.ci95
    samples = (math.log(high / low) / (2.0 * _Z)) ** 2 if low > 0 else 0.0
    count = process_count(record)
    if count < 2:
        return samples, math.inf
    processes = float(np.var(np.log(record.stability.process_p50s), ddof=1)) / count
    df = float(count - 1)
    if _critical(df) ** 2 * processes > _Z ** 2 * samples:
        return processes, df
    return samples, math.inf


def p50_interval(record: Record) -> P50Interval:
    """The interval shown for the record's p50 (this module's docstring)."""
    latency = record.latency_ms
    variance, df = log_p50_variance(record)
    if math.isinf(df):
        low, high = latency.ci95
    else:
        half = _critical(df) * math.sqrt(variance)
        low, high = latency.p50 * math.exp(-half), latency.p50 * math.exp(half)
    return P50Interval(latency.p50, low, high, level_of(record), tuple(latency.ci95), process_count(record))


def speedup_interval(baseline: Record, contender: Record, samples: tuple[float, float]
                     ) -> tuple[tuple[float, float], Level]:
    """The interval of baseline p50 / contender p50: ``samples`` (the bootstrap of both records'
    samples) where neither side's processes widen it, else a t interval of the log ratio with both
    sides' variances (Welch-Satterthwaite degrees of freedom). The level is "samples" when either
    record is one process."""
    level: Level = "processes" if level_of(baseline) == level_of(contender) == "processes" else "samples"
    sides = [log_p50_variance(record) for record in (baseline, contender)]
    if all(math.isinf(df) for _, df in sides):
        return samples, level
    variance = sum(v for v, _ in sides)
    df = variance ** 2 / sum(v ** 2 / df for v, df in sides if not math.isinf(df))
    half = _critical(df) * math.sqrt(variance)
    ratio = baseline.latency_ms.p50 / contender.latency_ms.p50
    return (ratio * math.exp(-half), ratio * math.exp(half)), level


def _critical(df: float) -> float:
    from scipy import stats as scipy_stats  # 1.5 s to import: only when a record has processes to count

    return float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2.0, df))

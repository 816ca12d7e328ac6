"""Paired A/B measurement on the target: models alternate in short blocks in one worker.

The worker side is ``edgebench.board.paired_blocks``. Here: the request (built from the same
``Sweep.request`` as ``edgebench run``, so exports, uploads to a board and backend options are
the run's), the per-round latency ratios with their confidence interval, and a ``Record`` per
model that says how the pair was measured (``method`` "paired", the details in ``env.pairing``).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from edgebench.models import ExportError
from edgebench.models.resolve import ResolvedModel
from edgebench.results.record import Record
from edgebench.sweep.transport import TransportError
from edgebench.sweep.execute import Sweep
from edgebench.sweep.plan import Measurement
from edgebench.sweep.records import make_record

# Blocks long enough for a few iterations of a small model, short enough that drift within a
# round stays small; rounds enough for a t interval on the per-round ratios.
DEFAULT_ROUNDS = 10
DEFAULT_BLOCK_S = 0.1
DEFAULT_WARMUP_S = 0.3


@dataclass(frozen=True)
class Pairing:
    rounds: int = DEFAULT_ROUNDS
    block_s: float = DEFAULT_BLOCK_S
    warmup_s: float = DEFAULT_WARMUP_S

    def describe(self, backend: str, models: int) -> dict:
        """How the pair was measured, for the record."""
        return {
            "method": f"{models} models alternating in {self.block_s:g} s blocks, {self.rounds} rounds, "
                      "order reversed every round, one worker process, one model running at a time",
            "rounds": self.rounds,
            "block_s": self.block_s,
            "warmup_s": self.warmup_s,
            "spinning": "off (session.intra_op.allow_spinning=0)" if backend == "onnxruntime" else "n/a",
        }


@dataclass(frozen=True)
class Ratio:
    """Latency of one model over another's: geometric mean of per-round ratios, 95% t interval."""

    ratio: float
    low: float
    high: float
    rounds: int

    @property
    def faster(self) -> bool:
        """A gain that clears the noise: the whole interval is below 1."""
        return self.high < 1.0

    def as_dict(self) -> dict:
        return {"ratio": self.ratio, "ci95": [self.low, self.high], "rounds": self.rounds}

    def __str__(self) -> str:
        return f"{self.ratio:.3f} [{self.low:.3f}, {self.high:.3f}]"


def ratio_of(blocks: list[list[float]], reference_blocks: list[list[float]]) -> Ratio:
    """Per round, the median of one model's block over the median of the reference's block."""
    from scipy import stats as scipy_stats  # slow to import (1.5 s): kept off the CLI's start

    logs = [math.log(statistics.median(b) / statistics.median(r)) for b, r in zip(blocks, reference_blocks)]
    n = len(logs)
    mean = statistics.fmean(logs)
    half = scipy_stats.t.ppf(0.975, n - 1) * statistics.stdev(logs) / math.sqrt(n) if n > 1 else math.inf
    return Ratio(math.exp(mean), math.exp(mean - half), math.exp(mean + half), n)


@dataclass(frozen=True)
class PairedEntry:
    """One model's share of a paired measurement."""

    model: ResolvedModel
    status: str
    error: str | None
    blocks: list[list[float]]
    record: Record

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def p50_ms(self) -> float:
        return statistics.median(sample for block in self.blocks for sample in block)


@dataclass(frozen=True)
class PairedMeasurement:
    backend: str
    entries: list[PairedEntry]

    def ratio(self, index: int, reference: int = 0) -> Ratio | None:
        """Latency of entry ``index`` over entry ``reference``; None if either failed."""
        entry, ref = self.entries[index], self.entries[reference]
        if not (entry.ok and ref.ok):
            return None
        return ratio_of(entry.blocks, ref.blocks)


def measure_paired(sweep: Sweep, models: list[ResolvedModel], backend: str, pairing: Pairing,
                   precision: str = "fp32", roles: list[str] | None = None, batch: int = 1) -> PairedMeasurement:
    """Measure ``models`` (the first is the reference) on ``backend`` in one paired worker run.

    ``roles`` label each model in its record's ``env.pairing.role``."""
    measurements = [Measurement(model, backend, batch, precision) for model in models]
    requests, failures = [], {}
    for index, measurement in enumerate(measurements):
        try:
            requests.append(sweep.request(measurement))
        except (ExportError, TransportError, ValueError) as exc:
            failures[index] = f"cannot prepare the model: {exc}"
            requests.append(None)
    if 0 in failures:
        results = [{"status": "error", "error": failures[0], "warnings": []}] * len(models)
    else:
        results = _run(sweep, requests, failures, pairing)
    description = pairing.describe(backend, len(models))
    entries = []
    for index, (measurement, result) in enumerate(zip(measurements, results)):
        record = make_record(measurement, _as_measure_result(result), run_id=sweep.run_id, config=sweep.config,
                             host_env=sweep.host_env, method="paired")
        role = roles[index] if roles else ("reference" if index == 0 else "candidate")
        record = record.model_copy(update={"env": {**record.env, "pairing": {**description, "role": role}}})
        entries.append(PairedEntry(measurement.model, result["status"], result.get("error"),
                                   result.get("blocks") or [], record))
    return PairedMeasurement(backend, entries)


def _run(sweep: Sweep, requests: list[dict | None], failures: dict[int, str], pairing: Pairing) -> list[dict]:
    """One ``paired`` worker request from the reference's ``measure`` request, with every model
    that could be prepared."""
    live = [i for i in range(len(requests)) if i not in failures]
    request = dict(requests[0])
    for key in ("model", "settings", "power", "profile_layers", "gpu_state"):
        request.pop(key, None)
    if request["backend"] == "onnxruntime":
        # An idle session's spinning threads would slow the running one down.
        request["backend_options"] = {**request["backend_options"], "allow_spinning": False}
    request.update(task="paired", models=[requests[i]["model"] for i in live],
                   pairing={"rounds": pairing.rounds, "block_s": pairing.block_s, "warmup_s": pairing.warmup_s})
    if any(requests[i]["inputs"] != request["inputs"] for i in live):
        request["model_inputs"] = [requests[i]["inputs"] for i in live]  # models of different input shapes
    timeout_s = sweep.config.settings.timeout_s + len(live) * pairing.rounds * pairing.block_s
    outcome = sweep.worker.run(request, timeout_s=timeout_s)
    results: list[dict] = [{"status": "error", "error": failures.get(i), "warnings": []} for i in range(len(requests))]
    if outcome["status"] != "ok":
        for i in live:
            results[i] = {**outcome, "warnings": list(outcome.get("warnings") or [])}
        return results
    for i, entry in zip(live, outcome["models"]):
        # No memory figure: the process held every model of the pair at once.
        results[i] = {**entry, "python": outcome.get("python")}
    return results


def _as_measure_result(result: dict) -> dict:
    """A paired entry in the shape ``make_record`` reads from a ``measure`` result."""
    if result["status"] != "ok":
        return result
    blocks = result["blocks"]
    return {
        **result,
        "samples_ms": [sample for block in blocks for sample in block],
        "stop_reason": f"paired: {len(blocks)} blocks",
        "process_p50s": [],
    }

"""Paired A/B measurement on the target: models alternate in short blocks in one worker.

The worker side is ``edgebench.board.paired_blocks``. Here: the request (built from the same
``Sweep.request`` as ``edgebench run``, so exports, uploads to a board and backend options are
the run's), the seed of the block order (drawn per measurement), the per-round latency ratios
with their confidence interval, and a ``Record`` per model that says how the pair was measured
(``method`` "paired", the details, seed and orders included, in ``env.pairing``). Where the sides
need different interpreters (another runtime), each model gets a long-lived worker of its own and
the workers take turns (``sweep.turns``); the entries and records are made the same way.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from edgebench.errors import UsageError
from edgebench.models import ExportError
from edgebench.models.resolve import ResolvedModel
from edgebench.results.record import Record
from edgebench.sweep.transport import TransportError
from edgebench.sweep.execute import Sweep
from edgebench.sweep.plan import Measurement
from edgebench.sweep.records import make_record
from edgebench.sweep.turns import shared_cpus, take_turns

# Blocks long enough for a few iterations of a small model, short enough that drift within a
# round stays small; rounds enough for a t interval on the per-round ratios.
DEFAULT_ROUNDS = 10
DEFAULT_BLOCK_S = 0.1
DEFAULT_WARMUP_S = 0.3
# A confirmation's pairing (regress --confirm, the pruner's keep rule). A round's ratio varies about
# as much with 0.005 s blocks as with 0.1 s ones here (benchmarks/pairing_blocks.py: the machine's
# hiccups are shorter than a block), so at equal time short blocks give more rounds and a narrower
# interval; 200 rounds of 0.01 s keep a run to a few seconds a model for a model of a few ms.
CONFIRM_ROUNDS = 200
CONFIRM_BLOCK_S = 0.01


@dataclass(frozen=True)
class Pairing:
    rounds: int = DEFAULT_ROUNDS
    block_s: float = DEFAULT_BLOCK_S
    warmup_s: float = DEFAULT_WARMUP_S
    seed: Optional[int] = None  # of the block order; None: a fresh one per measurement

    def describe(self, backend: str, models: int, seed: int, orders: list[list[int]], workers: int = 1) -> dict:
        """How the pair was measured, for the record; ``orders``: per round, the models'
        positions (0 the reference) as they ran."""
        where = ("one worker process" if workers == 1
                 else "one long-lived worker process per model, taking turns")
        return {
            "method": f"{models} models alternating in {self.block_s:g} s blocks, {self.rounds} rounds, "
                      f"randomised counterbalanced order (rounds in pairs, the second the reverse of the first), "
                      f"{where}, one model running at a time",
            "rounds": self.rounds,
            "block_s": self.block_s,
            "warmup_s": self.warmup_s,
            "seed": seed,
            "orders": orders,
            "workers": workers,
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
                   precision: str = "fp32", roles: list[str] | None = None, batch: int = 1,
                   pythons: Optional[Sequence[str]] = None) -> PairedMeasurement:
    """Measure ``models`` (the first is the reference) on ``backend`` in one paired worker run.

    ``roles`` label each model in its record's ``env.pairing.role``. ``pythons``, one interpreter
    per model: each model in a long-lived worker of its own on its interpreter, taking turns
    (``sweep.turns``; this machine only, UsageError for a remote target)."""
    if pythons is not None and sweep.worker.remote:
        raise UsageError("workers taking turns run on this machine only; a remote board's transport "
                         "cannot hold a worker open between blocks")
    measurements = [Measurement(model, backend, batch, precision) for model in models]
    requests, failures = [], {}
    for index, measurement in enumerate(measurements):
        try:
            requests.append(sweep.request(measurement))
        except (ExportError, TransportError, ValueError) as exc:
            failures[index] = f"cannot prepare the model: {exc}"
            requests.append(None)
    seed = pairing.seed if pairing.seed is not None else random.SystemRandom().randrange(2 ** 32)
    orders: list[list[int]] = []
    cpus = shared_cpus(sweep.config.threads) if pythons is not None else None
    if 0 in failures:
        results = [{"status": "error", "error": failures[0], "warnings": []}] * len(models)
    elif pythons is None:
        results, orders = _run(sweep, requests, failures, pairing, seed)
    else:
        results, orders = _run_turns(sweep, requests, failures, pairing, seed, pythons, cpus)
    description = pairing.describe(backend, len(models), seed, orders, workers=1 if pythons is None else len(models))
    roles = roles or ["reference" if index == 0 else "candidate" for index in range(len(models))]
    if pythons is not None:
        description["sides"] = [_side(role, python, result) for role, python, result in zip(roles, pythons, results)]
        description["cpus"] = sorted(cpus) if cpus else "any: the measurement's threads use every CPU"
    entries = []
    for measurement, result, role in zip(measurements, results, roles):
        record = make_record(measurement, _as_measure_result(result), run_id=sweep.run_id, config=sweep.config,
                             host_env=sweep.host_env, method="paired")
        record = record.model_copy(update={"env": {**record.env, "pairing": {**description, "role": role}}})
        entries.append(PairedEntry(measurement.model, result["status"], result.get("error"),
                                   result.get("blocks") or [], record))
    return PairedMeasurement(backend, entries)


def _shared_request(request: dict, pairing: Pairing) -> dict:
    """A ``measure`` request made into what every side of a pair shares: no model, no timing
    settings, no power or profiling, ONNX Runtime's spinning off."""
    shared = {key: value for key, value in request.items()
              if key not in ("model", "settings", "power", "profile_layers", "gpu_state")}
    if shared["backend"] == "onnxruntime":
        # An idle session's spinning threads would slow the running one down.
        shared["backend_options"] = {**shared["backend_options"], "allow_spinning": False}
    shared["pairing"] = {"rounds": pairing.rounds, "block_s": pairing.block_s, "warmup_s": pairing.warmup_s}
    return shared


def _run(sweep: Sweep, requests: list[dict | None], failures: dict[int, str], pairing: Pairing,
         seed: int) -> tuple[list[dict], list[list[int]]]:
    """One ``paired`` worker request from the reference's ``measure`` request, with every model
    that could be prepared; the results by model, and the orders by model position."""
    live = [i for i in range(len(requests)) if i not in failures]
    request = _shared_request(requests[0], pairing)
    request["pairing"]["seed"] = seed
    request.update(task="paired", models=[requests[i]["model"] for i in live])
    if any(requests[i]["inputs"] != request["inputs"] for i in live):
        request["model_inputs"] = [requests[i]["inputs"] for i in live]  # models of different input shapes
    timeout_s = sweep.config.settings.timeout_s + len(live) * pairing.rounds * pairing.block_s
    outcome = sweep.worker.run(request, timeout_s=timeout_s)
    results: list[dict] = [{"status": "error", "error": failures.get(i), "warnings": []} for i in range(len(requests))]
    if outcome["status"] != "ok":
        for i in live:
            results[i] = {**outcome, "warnings": list(outcome.get("warnings") or [])}
        return results, []
    for i, entry in zip(live, outcome["models"]):
        # No memory figure: the process held every model of the pair at once.
        results[i] = {**entry, "python": outcome.get("python")}
    return results, [[live[j] for j in order] for order in outcome["orders"]]


def _run_turns(sweep: Sweep, requests: list[dict | None], failures: dict[int, str], pairing: Pairing, seed: int,
               pythons: Sequence[str], cpus: Optional[set[int]]) -> tuple[list[dict], list[list[int]]]:
    """Every model that could be prepared in a worker of its own, pinned to ``cpus``, taking turns
    (``sweep.turns``)."""
    loads = {i: {**_shared_request(request, pairing), "task": "load", "model": request["model"]}
             for i, request in enumerate(requests) if i not in failures}
    entries, orders = take_turns(loads, pythons, pairing.rounds, pairing.block_s, seed,
                                 sweep.config.settings.timeout_s, cpus)
    results = [entries.get(i) or {"status": "error", "error": failures.get(i), "warnings": []}
               for i in range(len(requests))]
    return results, orders


def _side(role: str, python: str, result: dict) -> dict:
    """One side of a pair measured by workers taking turns: its interpreter and the runtime it ran."""
    backend = result.get("backend") or {}
    runtime = f"{backend['library']} {backend['version']}" if backend.get("version") else None
    return {"role": role, "interpreter": python, "python": result.get("python"), "runtime": runtime}


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

"""Two models measured in each of several power modes: latency, average power and energy per inference.

What a pruned model saves depends on the power mode and on the network: on a Jetson AGX Xavier in
three nvpmodel modes, pruning ranged from real savings to a higher consumption. So ``edgebench
prune --mode A,B,C`` decides in the first mode and then measures the baseline and the final model
in every listed mode. Each mode is a stage of the run session of its own (switched, idle power
sampled, restored afterwards), and every number goes through the path ``edgebench run`` uses:

- latency: the two models alternating in one worker (``sweep.paired``), the second's latency over
  the first's with its 95% interval, as the pruner's final comparison;
- power: a paired block (0.1 s by default) is shorter than the power sampler's reading interval
  (tegrastats: 100 ms), so the readings cannot be told apart by model. Each model is measured once
  more alone, in its own worker with the sampler running, for at least ``POWER_WINDOW_S``; its
  record (method ``power``) gives the average power and the energy per inference.

A target without a power sampler keeps the latency and leaves the power columns empty (None),
never zero. Any command comparing two models can call ``measure_in_modes``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from edgebench.errors import UsageError
from edgebench.models.resolve import ResolvedModel
from edgebench.results.record import Record, Settings
from edgebench.session import BoardStage, RunSession
from edgebench.sweep.paired import Pairing, Ratio, measure_paired
from edgebench.sweep.plan import Measurement
from edgebench.targets.definition import TargetDefinition

# Seconds each model runs alone for its power readings, at least: ten readings at tegrastats' 100 ms.
POWER_WINDOW_S = 1.0
PRECISION = "fp32"  # as the paired comparisons the pruner makes
# env.prune.stage of a prune run's per-mode records; results.pruned's table reads only the "final" stage.
MODES_STAGE = "modes"
NOTE = ("latency and ratio: the two models alternating in one worker (paired, 95% interval); average power and "
        "energy per inference: each model measured alone with the power sampler running, because a paired block "
        "is too short for the sampler to tell the two models apart; power empty where the target has no sampler")


def mode_list(definition: TargetDefinition, text: Optional[str]) -> list[str]:
    """``--mode maxn,15w`` as the target's mode names, in order; empty when not given. A mode the
    target lacks, or one named twice, is a usage error."""
    if text is None:
        return []
    names = [item.strip() for item in text.split(",") if item.strip()]
    if not names:
        raise UsageError(f"--mode names no mode: {text!r}")
    modes = []
    for name in names:
        mode = definition.mode(name)  # one line listing the target's modes when it has no such mode
        modes.append(mode.name if mode is not None else name)
    twice = sorted({mode for mode in modes if modes.count(mode) > 1})
    if twice:
        raise UsageError(f"--mode names {', '.join(twice)} more than once")
    return modes


@dataclass(frozen=True)
class Side:
    """One model in one mode and backend."""

    latency_ms: Optional[float]  # p50 in the paired run
    avg_power_w: Optional[float]
    mj_per_inference: Optional[float]

    def as_dict(self) -> dict[str, Optional[float]]:
        return {"latency_ms": self.latency_ms, "avg_power_w": self.avg_power_w,
                "mj_per_inference": self.mj_per_inference}


@dataclass(frozen=True)
class ModeRow:
    """Both models in one mode on one backend; ``ratio`` is the second's latency over the first's."""

    mode: str
    backend: str
    sides: dict[str, Side]  # role -> side, the reference first
    ratio: Optional[Ratio]
    power_source: Optional[str]  # None: the target had no power sampler in this mode
    power_window_s: Optional[float]  # how long each model ran alone for its power readings
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "backend": self.backend,
                **{role: side.as_dict() for role, side in self.sides.items()},
                "latency_ratio": self.ratio.as_dict() if self.ratio else None,
                "power_source": self.power_source, "power_window_s": self.power_window_s,
                "notes": list(self.notes)}


def table_report(rows: Sequence[ModeRow], roles: Sequence[str]) -> dict[str, Any]:
    """The ``modes`` table of report.json: what was measured how, and one row per mode and backend."""
    return {"roles": list(roles), "note": NOTE, "rows": [row.as_dict() for row in rows]}


def measure_in_modes(session: RunSession, definition: TargetDefinition, device: str, modes: Sequence[str],
                     models: Sequence[ResolvedModel], roles: Sequence[str], backends: Sequence[str],
                     settings: Settings, pairing: Pairing, *, threads: Optional[int] = None,
                     label: Callable[[str], dict] = lambda role: {}) -> list[ModeRow]:
    """``models`` (a reference and one other, named by ``roles``) in each of ``modes`` on each of
    ``backends``; every record is kept in ``session`` as it is made, with ``label(role)`` merged
    into its ``env``. ``settings`` are the paired measurement's, as for the caller's own pairs."""
    if len(models) != 2 or len(roles) != 2:
        raise ValueError("measure_in_modes compares two models: a reference and one other")
    rows = []
    for mode in modes:
        with session.stage(definition, device, mode=mode, measure_power=True) as ready:
            session.log(f"mode {ready.board.mode}: measuring {' and '.join(roles)} on {', '.join(backends)}"
                        + ("" if ready.board.power else ", without power"))
            for backend in backends:
                rows.append(_measure_mode(session, ready, models, roles, backend, settings, pairing, threads, label))
    return rows


def _measure_mode(session: RunSession, ready: BoardStage, models: Sequence[ResolvedModel], roles: Sequence[str],
                  backend: str, settings: Settings, pairing: Pairing, threads: Optional[int],
                  label: Callable[[str], dict]) -> ModeRow:
    paired = measure_paired(ready.sweep(settings, threads=threads), list(models), backend, pairing,
                            precision=PRECISION, roles=list(roles))
    session.keep_all(_labelled([entry.record for entry in paired.entries], roles, label))
    notes = [f"{role}: {entry.error}" for role, entry in zip(roles, paired.entries) if not entry.ok]
    latencies = [entry.p50_ms if entry.ok else None for entry in paired.entries]
    power = ready.board.power
    energies: list[Optional[dict]] = [None, None]
    window = max(POWER_WINDOW_S, pairing.rounds * pairing.block_s)  # as long as each ran in the pair
    if power is None:
        notes.append("power not measured: " + "; ".join(ready.board.power_problems))
    else:
        alone = ready.sweep(_alone_settings(settings, window), threads=threads)
        for index, (model, role) in enumerate(zip(models, roles)):
            record = alone.measure(Measurement(model, backend, 1, PRECISION), method="power")
            session.keep_all(_labelled([record], [role], label))
            energies[index] = record.energy
            notes += [f"{role}: {text}" for text in ([record.error] if record.error else []) + _power_warnings(record)]
    sides = {role: Side(latency, (energy or {}).get("avg_power_w"), (energy or {}).get("mj_per_inference"))
             for role, latency, energy in zip(roles, latencies, energies)}
    return ModeRow(ready.board.mode, backend, sides, paired.ratio(1, 0), power["source"] if power else None,
                   window if power else None, notes)


def _alone_settings(settings: Settings, window: float) -> Settings:
    """A fixed window of ``window`` seconds, no stopping rule: its latency is not what it is for."""
    return settings.model_copy(update={"min_time_s": window, "max_time_s": window, "min_iterations": 1,
                                       "target_ci": 0.0, "processes": 1})


def _power_warnings(record: Record) -> list[str]:
    """The record's warnings about its power readings (too few, none), for the row's notes."""
    return [warning for warning in record.warnings if "power" in warning]


def _labelled(records: Iterable[Record], roles: Iterable[str], label: Callable[[str], dict]) -> list[Record]:
    return [record.model_copy(update={"env": {**record.env, **label(role)}}) for record, role in zip(records, roles)]

"""Paired confirmation of suspected regressions: ``edgebench regress --confirm``.

History verdicts compare two runs made hours apart, so the machine's state on each night is part
of what they see. A confirmation measures the suspect again with that taken out: tonight's model
file and the reference's (the record ``regress`` judged against, the "last accepted" one), both
given back by the artifact store, alternate in short blocks in a randomised, counterbalanced order, in
one worker process (``sweep.paired.measure_paired``, the pruner's paired loop) on the key's target, mode,
device, backend, precision, batch and threads. A golden baseline the user pins (``--golden RUN``:
that run's record of the key) runs as a third model of the same pair; its ratio is reported
beside, the verdict is on the reference.

Which keys: every key whose history verdict is a regression, and every key whose point estimate
is beyond the threshold without being significant ("suspected").

The sequential rule
-------------------
A session is one paired worker run of ``rounds`` rounds in a fresh process. After each session
the rounds so far are pooled and the ratio contender / reference (geometric mean of per-round
ratios, 95% t interval) is judged:

- **regression**: the ratio is above 1 + threshold and the one-sided p-value of "the contender is
  no slower" is at most alpha after the corrections below;
- **improvement**: the ratio is below 1 - threshold and the whole interval below 1;
- **same**: the whole interval inside (1 - threshold, 1 + threshold);
- otherwise **undecided**, and another session runs, up to ``sessions``.

Corrections: each key may look up to ``sessions`` times, so its p-value is multiplied by
``sessions`` (Bonferroni over the looks: stopping at a lucky look cannot inflate the false-positive
rate); the keys' p-values are then adjusted together with Benjamini-Hochberg
(``scipy.stats.false_discovery_control``), so at most a share alpha of the confirmed regressions
across the report are expected to be false. Rounds of separate sessions are pooled as if from
one: the process-to-process variation of a *ratio* inside one process is small, since both models
share the process's state.

The threshold is the key's own (``Verdict.rule``: a suite may set one per model); alpha is the
report's.

A key that cannot be measured again (its files removed by ``results gc``, a model built from
code with no file kept, a target not available here, a failed worker) is ``undecided`` with the
reason in one line. Every record measured is kept in the store (method ``paired``,
``env.pairing.role``, ``env.confirm``) under a run tagged ``command=regress-confirm``;
``env.confirm.look`` holds what the rule said after that session (before the adjustment across
keys), its ``final`` marking the session that ended the key.

A/A checks
----------
``aa`` keys (chosen by ``results.calibration``) are confirmed against themselves: tonight's kept
file restored twice and loaded as reference and contender in one worker, through this same
``_confirm_key`` (same sessions, same ``decide``, same Bonferroni over the looks), their records
marked ``env.confirm.aa``. Any regression among them is a false positive of this rule, so the
store accumulates its achieved rate. They never fail the build, and they are kept out of the real
keys' Benjamini-Hochberg family: each is adjusted as a family of one (the identity), so a check's
stored outcome is final when it is kept, and what is measured is the per-key rate the rule
promises to keep under alpha. Mixing them in would make the real keys' verdicts depend on how many
A/A checks ran, and BH over several keys can only lower a key's rate: the figure errs on the side
of too many false positives, never too few.

Where the runtime itself changed between the records (another onnxruntime, torch or TensorRT:
``results.runtimes``) one process cannot hold both sides. With ``reference_python`` (an interpreter
that has the reference's runtime and can import edgebench) each side gets a long-lived worker of
its own, on its own interpreter, and the workers take turns block by block (``sweep.turns``); the
ratio and the rule are the same. Without it, both models run on tonight's runtime in one process,
which answers "is the model slower", not "is the runtime slower", and the reason says the
runtime could not be restored.

The nightly golden pairing
--------------------------
With ``golden_all`` (``--golden-all``, a suite's ``golden_every_night``) every key not confirmed
tonight is measured too: one paired session, the golden run's file of the key as the reference
and tonight's as the contender, through the same ``_measure_pair`` as the confirmation's golden
side. Its records are marked ``env.confirm.golden_series`` (the golden run, the ratio contender /
golden and the judged key); a confirmed key's final session carries the same mark, its golden
ratio pooled over its sessions. So the store holds, night after night, each key's series of
paired ratios against golden (``results.golden_series`` reads it back). It never fails the build.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from edgebench.errors import UsageError
from edgebench.models import resolve_model
from edgebench.models.resolve import ResolvedModel
from edgebench.results.artifacts import ArtifactStore
from edgebench.results.compare import latest_per_key
from edgebench.results.key import HISTORY_FIELDS
from edgebench.results.record import Record, Settings
from edgebench.results.regress import RegressReport, Verdict
from edgebench.results.runtimes import interpreters, unrestored
from edgebench.results.store import RunInfo, Store
from edgebench.session import RunSession, available_definition
from edgebench.sweep.execute import Sweep
from edgebench.sweep.paired import Pairing, PairedMeasurement, Ratio, measure_paired, ratio_of

DEFAULT_SESSIONS = 3
TAGS = {"command": "regress-confirm"}
PAIRED_TIMEOUT_S = 600.0
ROLES = ("reference", "contender", "golden")
GOLDEN_MARK = "golden_series"  # env.confirm's mark on the records of a key's nightly golden ratio

ConfirmOutcome = Literal["regression", "improvement", "same", "undecided"]
CONFIRM_OUTCOMES: tuple[ConfirmOutcome, ...] = ("regression", "undecided", "improvement", "same")


@dataclass(frozen=True)
class Confirmation:
    """The paired verdict on one suspected key."""

    verdict: Verdict  # the history verdict it confirms
    outcome: ConfirmOutcome
    reason: str
    ratio: Optional[Ratio] = None  # contender / reference, every session's rounds pooled
    p_value: Optional[float] = None  # one-sided, Bonferroni over the looks allowed
    adjusted_p: Optional[float] = None  # Benjamini-Hochberg across the report's confirmed keys
    sessions: int = 0
    golden: Optional[Ratio] = None  # contender / golden
    golden_run: Optional[str] = None

    @property
    def key(self) -> tuple:
        return self.verdict.contender.history_key

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "ratio": self.ratio.as_dict() if self.ratio else None,
            "p_value": self.p_value,
            "adjusted_p": self.adjusted_p,
            "sessions": self.sessions,
            "golden_run": self.golden_run,
            "golden_ratio": self.golden.as_dict() if self.golden else None,
        }


@dataclass(frozen=True)
class GoldenPairing:
    """Tonight's file of one unsuspected key against the golden run's, one paired session."""

    verdict: Verdict
    golden_run: str
    ratio: Optional[Ratio]  # contender / golden; None when not measured
    reason: str = ""  # why not measured, or what could not be restored

    def to_json_dict(self) -> dict[str, Any]:
        return {"key": dict(zip(HISTORY_FIELDS, self.verdict.contender.history_key)), "golden_run": self.golden_run,
                "ratio": self.ratio.as_dict() if self.ratio else None, "reason": self.reason}


@dataclass(frozen=True)
class ConfirmReport:
    run_id: Optional[str]  # the run holding the confirmation records; None when nothing was measured
    sessions: int
    rounds: int
    confirmations: dict[tuple, Confirmation] = field(default_factory=dict)  # by history key
    aa: dict[tuple, Confirmation] = field(default_factory=dict)  # A/A checks, by history key; never failing
    golden_pairings: dict[tuple, GoldenPairing] = field(default_factory=dict)  # by history key; never failing

    def failing(self, verdict: Verdict) -> bool:
        """Whether this key fails the build once confirmed: a confirmed regression, a failed
        measurement, or a history regression confirmation could not decide on (kept, to be safe)."""
        confirmation = self.confirmations.get(verdict.contender.history_key)
        if verdict.outcome == "failed" or confirmation is None:
            return verdict.outcome in ("regression", "failed")
        return confirmation.outcome == "regression" or (
            confirmation.outcome == "undecided" and verdict.outcome == "regression")

    def failed(self, report: RegressReport) -> bool:
        return any(self.failing(verdict) for verdict in report.verdicts)

    def to_json_dict(self) -> dict[str, Any]:
        return {"run": self.run_id, "sessions": self.sessions, "rounds": self.rounds,
                "golden_pairings": [pairing.to_json_dict() for pairing in self.golden_pairings.values()]}


def suspected(report: RegressReport) -> list[Verdict]:
    """The keys worth confirming: history regressions and changes beyond the threshold that were
    not significant."""
    return [verdict for verdict in report.verdicts if verdict.outcome == "regression" or (
        verdict.outcome == "unchanged" and verdict.significance is not None
        and verdict.significance.change > verdict.rule.threshold)]


def golden_records(store: Store, run_id: str, method: str) -> dict[tuple, Record]:
    """The pinned run's ok records of ``method``, by history key; UsageError for an unknown run."""
    run = store.get_run(run_id)
    return latest_per_key((r for r in store.records(run.id, method=method) if r.status == "ok"), HISTORY_FIELDS)


def stored_confirm_records(store: Store, runs: Sequence[RunInfo], since: Optional[str] = None) -> Iterator[Record]:
    """The paired records of the store's confirmation runs (tagged ``TAGS``), oldest run first;
    ``since``: only runs started at or after it. ``runs`` newest first, as ``Store.runs`` gives them."""
    for run in reversed(runs):
        if TAGS.items() <= run.tags.items() and "paired" in run.methods and (since is None or run.started_at >= since):
            yield from store.records(run.id, method="paired")


def confirm(report: RegressReport, session: RunSession, *, sessions: int = DEFAULT_SESSIONS,
            pairing: Pairing = Pairing(), golden: Mapping[tuple, Record] | None = None,
            measure: Callable[..., PairedMeasurement] = measure_paired, aa: Sequence[Verdict] = (),
            reference_python: Optional[str] = None, golden_all: bool = False) -> ConfirmReport:
    """Confirm every suspected key of ``report`` by paired sessions in ``session`` (its records
    kept there as they are made), then correct the keys' p-values together; then check each
    ``aa`` key against itself (the module docstring's A/A checks); then, with ``golden_all``, pair
    every other key with its ``golden`` record (the nightly golden pairing). ``reference_python``:
    the interpreter for sides whose runtime differs from tonight's (``results.runtimes``)."""
    if sessions < 1:
        raise UsageError(f"--confirm-sessions must be at least 1, not {sessions}")
    golden = golden or {}
    confirmations, checks, pairings = [], [], []
    with tempfile.TemporaryDirectory(prefix="edgebench-confirm-") as work:
        jobs = [(verdict, False) for verdict in suspected(report)] + [(verdict, True) for verdict in aa]
        for index, (verdict, itself) in enumerate(jobs):
            pinned = None if itself else golden.get(verdict.contender.history_key)
            try:
                confirmation = _confirm_key(report, session, verdict, pinned, sessions, pairing, measure,
                                            Path(work) / str(index), aa=itself, reference_python=reference_python)
            except UsageError as exc:  # gone files, a target not here: the key stays undecided, said why
                session.log(f"confirm {verdict.contender.model}: {exc}")
                confirmation = Confirmation(verdict, "undecided", f"not measured again: {exc}")
            (checks if itself else confirmations).append(confirmation)
        measured = {c.key for c in confirmations if c.golden is not None}  # their golden ratio is marked already
        for index, verdict in enumerate(golden_keys(report, golden) if golden_all else []):
            if verdict.contender.history_key not in measured:
                pairings.append(_pair_with_golden(session, verdict, golden[verdict.contender.history_key], pairing,
                                                  measure, Path(work) / f"golden-{index}", reference_python))
    adjusted = _benjamini_hochberg(confirmations, report)
    alone = [c for check in checks for c in _benjamini_hochberg([check], report)]  # a family of one each
    return ConfirmReport(session.run_id, sessions, pairing.rounds, {c.key: c for c in adjusted},
                         {c.key: c for c in alone}, {p.verdict.contender.history_key: p for p in pairings})


def golden_keys(report: RegressReport, golden: Mapping[tuple, Record]) -> list[Verdict]:
    """The keys the nightly golden pairing can measure: measured fine tonight, held by the golden run."""
    return [verdict for verdict in report.verdicts
            if verdict.contender.status == "ok" and verdict.contender.history_key in golden]


def decide(ratio: Ratio, p_value: float, threshold: float, alpha: float) -> tuple[ConfirmOutcome, str]:
    """The module docstring's rule on one pooled ratio; ``p_value`` already corrected."""
    shown = f"ratio {ratio} over {ratio.rounds} rounds"
    if ratio.ratio > 1 + threshold and p_value <= alpha:
        return "regression", f"{shown}: slower by more than {threshold:.0%}, p = {p_value:.2g} <= {alpha:g}"
    if ratio.ratio < 1 - threshold and ratio.high < 1:
        return "improvement", f"{shown}: faster by more than {threshold:.0%}, the interval below 1"
    if 1 - threshold < ratio.low and ratio.high < 1 + threshold:
        return "same", f"{shown}: the interval inside 1 ± {threshold:.0%}"
    return "undecided", f"{shown}: p = {p_value:.2g}, the interval reaches past 1 ± {threshold:.0%}"


def one_sided_p(ratio: Ratio) -> float:
    """p of "the contender is no slower" (log ratio <= 0), from the ratio's t interval."""
    from scipy import stats as scipy_stats  # slow to import (1.5 s): kept off the CLI's start

    df = ratio.rounds - 1
    if df < 1 or not math.isfinite(ratio.high):
        return 1.0
    error = (math.log(ratio.high) - math.log(ratio.low)) / (2 * scipy_stats.t.ppf(0.975, df))
    if error == 0:
        return 0.0 if ratio.ratio > 1 else 1.0
    return float(scipy_stats.t.sf(math.log(ratio.ratio) / error, df))


def adjust_p_values(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values: a key is a discovery at false-discovery rate q when
    its adjusted p is at most q."""
    from scipy import stats as scipy_stats  # slow to import (1.5 s): kept off the CLI's start

    if not p_values:
        return []
    return [float(p) for p in scipy_stats.false_discovery_control(list(p_values), method="bh")]


def _confirm_key(report: RegressReport, session: RunSession, verdict: Verdict, pinned: Optional[Record],
                 sessions: int, pairing: Pairing, measure: Callable[..., PairedMeasurement],
                 work: Path, aa: bool = False, reference_python: Optional[str] = None) -> Confirmation:
    """One key's sequential paired confirmation; ``aa``: against itself (tonight's file as both sides)."""
    contender = verdict.contender
    reference = contender if aa else verdict.baseline
    sides = _restored_sides(session, ((ROLES[0], reference), (ROLES[1], contender)), work)
    notes = []
    if pinned is not None:
        try:
            sides += _restored_sides(session, ((ROLES[2], pinned),), work)
        except UsageError as exc:  # the verdict is on the reference: go on without the golden side
            notes.append(f"golden run {pinned.run_id} not measured: {exc}")
            pinned = None
    if aa and sides[0][1].fingerprint != sides[1][1].fingerprint:  # the check's premise: one file on both sides
        raise RuntimeError(f"A/A check of {contender.model}: the two sides hold different files")
    records = [reference, contender, *([pinned] if pinned is not None else [])]
    pythons = interpreters(records, reference_python)  # None: one process holds every side
    roles = [role for role, _ in sides]
    blocks: list[list[list[float]]] = [[] for _ in sides]
    outcome, reason, ratio, p_value, golden, done = "undecided", "", None, None, None, 0
    with _paired_stage(session, contender, pairing) as sweep:
        while done < sessions:
            done += 1
            session.log(f"{'A/A check' if aa else 'confirm'} {contender.model} ({contender.backend}): session {done} "
                        f"of at most {sessions}")
            paired = _measure_pair(sweep, contender, sides, pairing, measure, pythons)
            failed = _failures(roles, paired)
            if failed:
                session.keep_all(_labelled(paired, verdict, reference.run_id, done, aa))
                return Confirmation(verdict, "undecided", "the paired measurement failed: " + failed,
                                    ratio, p_value, sessions=done)
            for pooled, entry in zip(blocks, paired.entries):
                pooled.extend(entry.blocks)
            ratio = ratio_of(blocks[1], blocks[0])
            p_value = min(1.0, one_sided_p(ratio) * sessions)
            outcome, reason = decide(ratio, p_value, verdict.rule.threshold, report.alpha)
            final = outcome != "undecided" or done == sessions
            look = {"outcome": outcome, "ratio": ratio.as_dict(), "p_value": p_value, "final": final}
            golden = ratio_of(blocks[1], blocks[2]) if pinned is not None else None
            mark = _golden_mark(verdict, pinned, golden) if final and golden is not None else {}
            session.keep_all(_labelled(paired, verdict, reference.run_id, done, aa, look=look, **mark))
            if final:
                break
    notes += unrestored(roles, records, paired, reference_python)
    reason = "; ".join([reason, *notes])
    return Confirmation(verdict, outcome, reason, ratio, p_value, sessions=done, golden=golden,
                        golden_run=pinned.run_id if pinned is not None else None)


def _pair_with_golden(session: RunSession, verdict: Verdict, pinned: Record, pairing: Pairing,
                      measure: Callable[..., PairedMeasurement], work: Path,
                      reference_python: Optional[str]) -> GoldenPairing:
    """One key's nightly golden pairing: one session, the golden run's file the reference; its
    records kept marked (``GOLDEN_MARK``). What cannot be measured is said, never raised."""
    contender = verdict.contender
    try:
        sides = _restored_sides(session, ((ROLES[2], pinned), (ROLES[1], contender)), work)
        records = [pinned, contender]
        roles = [role for role, _ in sides]
        with _paired_stage(session, contender, pairing) as sweep:
            session.log(f"golden pairing {contender.model} ({contender.backend}) against run {pinned.run_id}")
            paired = _measure_pair(sweep, contender, sides, pairing, measure, interpreters(records, reference_python))
    except UsageError as exc:  # gone files, a target not here
        session.log(f"golden pairing {contender.model}: {exc}")
        return GoldenPairing(verdict, pinned.run_id, None, f"not measured: {exc}")
    failed = _failures(roles, paired)
    if failed:
        session.keep_all(_labelled(paired, verdict, pinned.run_id, 1, False))
        return GoldenPairing(verdict, pinned.run_id, None, "the paired measurement failed: " + failed)
    ratio = ratio_of(paired.entries[1].blocks, paired.entries[0].blocks)
    session.keep_all(_labelled(paired, verdict, pinned.run_id, 1, False, **_golden_mark(verdict, pinned, ratio)))
    return GoldenPairing(verdict, pinned.run_id, ratio, "; ".join(unrestored(roles, records, paired, reference_python)))


def _restored_sides(session: RunSession, sides: Sequence[tuple[str, Record]],
                    work: Path) -> list[tuple[str, ResolvedModel]]:
    """Each (role, record) as (role, its measured file restored from the artifact store)."""
    if session.artifacts is None:
        raise UsageError("the store keeps no model files (an in-memory store without $EDGEBENCH_ARTIFACTS)")
    return [(role, _restored(session.artifacts, record, work / role)) for role, record in sides]


@contextmanager
def _paired_stage(session: RunSession, record: Record, pairing: Pairing) -> Iterator[Sweep]:
    """The key's target staged for paired sessions: its mode and device, no power sampling."""
    definition = available_definition(record.target)
    settings = Settings(min_time_s=0.0, max_time_s=0.0, min_iterations=1, warmup_s=pairing.warmup_s, target_ci=0.0,
                        timeout_s=PAIRED_TIMEOUT_S, threads=_threads(record), processes=1)
    with session.stage(definition, record.device, mode=record.mode, measure_power=False) as ready:
        yield ready.sweep(settings, threads=settings.threads, include_copies=bool(record.include_copies))


def _measure_pair(sweep: Sweep, contender: Record, sides: Sequence[tuple[str, ResolvedModel]], pairing: Pairing,
                  measure: Callable[..., PairedMeasurement], pythons: Optional[list[str]]) -> PairedMeasurement:
    """One paired session of ``sides`` (role, model; the first the reference) on the contender's
    backend, precision and batch: the one path of confirmations, A/A checks and golden pairings."""
    return measure(sweep, [model for _, model in sides], contender.backend, pairing, precision=contender.precision,
                   roles=[role for role, _ in sides], batch=contender.batch, pythons=pythons)


def _failures(roles: Sequence[str], paired: PairedMeasurement) -> str:
    return "; ".join(f"{role}: {entry.error}" for role, entry in zip(roles, paired.entries) if not entry.ok)


def _golden_mark(verdict: Verdict, pinned: Record, ratio: Ratio) -> dict[str, Any]:
    """The mark of a key's golden ratio tonight: a point of its golden series."""
    return {GOLDEN_MARK: {"golden_run": pinned.run_id, "ratio": ratio.as_dict(),
                          "key": list(verdict.contender.history_key)}}


def measured_file_role(record: Record) -> Optional[str]:
    """The role of the ONNX file a confirmation measures the record by: its own ONNX model, else
    the ONNX export a torch model was measured by; None when it kept neither."""
    if any(a.role == "model" and a.name.endswith(".onnx") for a in record.artifacts):
        return "model"
    return "onnx" if any(a.role == "onnx" for a in record.artifacts) else None


def _restored(artifacts: ArtifactStore, record: Record, out_dir: Path) -> ResolvedModel:
    """The record's measured ONNX file (``measured_file_role``), given back by the artifact store
    and resolved at the record's input shapes."""
    roles = {artifact.role for artifact in record.artifacts}
    role = measured_file_role(record)
    if role is None:
        raise UsageError(f"the record of {record.model} (run {record.run_id}) kept no ONNX file to measure again "
                         f"(files kept: {', '.join(sorted(roles)) or 'none'})")
    path = artifacts.restore(record, role, out_dir)[0]
    shapes = [f"{name}={'x'.join(str(size) for size in shape[1:])}" for name, shape in record.input_shapes.items()]
    return resolve_model(str(path), shapes)


def _threads(record: Record) -> Optional[int]:
    return record.settings.threads if record.settings is not None else None


def _labelled(paired: PairedMeasurement, verdict: Verdict, reference_run: str, session_number: int, aa: bool,
              **marks: Any) -> list[Record]:
    """The records as the store keeps them: which key and runs they confirm, whether against
    itself, and ``marks``: what the rule said after this session (``look``), a golden ratio
    (``GOLDEN_MARK``); no model spec (a temporary path), so no history follows them."""
    origin = {"contender_run": verdict.contender.run_id, "reference_run": reference_run,
              "model_spec": verdict.contender.model_spec, "session": session_number, "aa": aa, **marks}
    return [entry.record.model_copy(update={"model_spec": None, "model": verdict.contender.model,
                                            "env": {**entry.record.env, "confirm": origin}})
            for entry in paired.entries]


def _benjamini_hochberg(confirmations: list[Confirmation], report: RegressReport) -> list[Confirmation]:
    """Adjust the measured keys' p-values together; a key that stopped as a regression but does
    not survive the adjustment becomes undecided."""
    tested = [c for c in confirmations if c.p_value is not None]
    adjusted = dict(zip(map(id, tested), adjust_p_values([c.p_value for c in tested])))
    result = []
    for confirmation in confirmations:
        if id(confirmation) not in adjusted:
            result.append(confirmation)
            continue
        q = adjusted[id(confirmation)]
        outcome, reason = confirmation.outcome, confirmation.reason
        if outcome == "regression" and q > report.alpha:
            outcome = "undecided"
            reason += f"; not a discovery once {len(tested)} keys are adjusted together (BH p = {q:.2g})"
        result.append(Confirmation(confirmation.verdict, outcome, reason, confirmation.ratio, confirmation.p_value, q,
                                   confirmation.sessions, confirmation.golden, confirmation.golden_run))
    return result

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
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from edgebench.errors import UsageError
from edgebench.models import resolve_model
from edgebench.results.artifacts import ArtifactStore
from edgebench.results.compare import latest_per_key
from edgebench.results.key import HISTORY_FIELDS
from edgebench.results.record import Record, Settings
from edgebench.results.regress import RegressReport, Verdict
from edgebench.results.runtimes import interpreters, unrestored
from edgebench.results.store import Store
from edgebench.session import RunSession, available_definition
from edgebench.sweep.paired import Pairing, PairedMeasurement, Ratio, measure_paired, ratio_of

DEFAULT_SESSIONS = 3
TAGS = {"command": "regress-confirm"}
PAIRED_TIMEOUT_S = 600.0
ROLES = ("reference", "contender", "golden")

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
class ConfirmReport:
    run_id: Optional[str]  # the run holding the confirmation records; None when nothing was measured
    sessions: int
    rounds: int
    confirmations: dict[tuple, Confirmation] = field(default_factory=dict)  # by history key
    aa: dict[tuple, Confirmation] = field(default_factory=dict)  # A/A checks, by history key; never failing

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
        return {"run": self.run_id, "sessions": self.sessions, "rounds": self.rounds}


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


def confirm(report: RegressReport, session: RunSession, *, sessions: int = DEFAULT_SESSIONS,
            pairing: Pairing = Pairing(), golden: Mapping[tuple, Record] | None = None,
            measure: Callable[..., PairedMeasurement] = measure_paired, aa: Sequence[Verdict] = (),
            reference_python: Optional[str] = None) -> ConfirmReport:
    """Confirm every suspected key of ``report`` by paired sessions in ``session`` (its records
    kept there as they are made), then correct the keys' p-values together; then check each
    ``aa`` key against itself (the module docstring's A/A checks). ``reference_python``: the
    interpreter for sides whose runtime differs from tonight's (``results.runtimes``)."""
    if sessions < 1:
        raise UsageError(f"--confirm-sessions must be at least 1, not {sessions}")
    golden = golden or {}
    confirmations, checks = [], []
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
    adjusted = _benjamini_hochberg(confirmations, report)
    alone = [c for check in checks for c in _benjamini_hochberg([check], report)]  # a family of one each
    return ConfirmReport(session.run_id, sessions, pairing.rounds, {c.key: c for c in adjusted},
                         {c.key: c for c in alone})


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
    if session.artifacts is None:
        raise UsageError("the store keeps no model files (an in-memory store without $EDGEBENCH_ARTIFACTS)")
    sides = [(role, _restored(session.artifacts, record, work / role))
             for role, record in ((ROLES[0], reference), (ROLES[1], contender))]
    notes = []
    if pinned is not None:
        try:
            sides.append((ROLES[2], _restored(session.artifacts, pinned, work / ROLES[2])))
        except UsageError as exc:  # the verdict is on the reference: go on without the golden side
            notes.append(f"golden run {pinned.run_id} not measured: {exc}")
            pinned = None
    models = [model for _, model in sides]
    if aa and models[0].fingerprint != models[1].fingerprint:  # the check's premise: one file on both sides
        raise RuntimeError(f"A/A check of {contender.model}: the two sides hold different files")
    records = [reference, contender, *([pinned] if pinned is not None else [])]
    pythons = interpreters(records, reference_python)  # None: one process holds every side
    definition = available_definition(contender.target)
    settings = Settings(min_time_s=0.0, max_time_s=0.0, min_iterations=1, warmup_s=pairing.warmup_s, target_ci=0.0,
                        timeout_s=PAIRED_TIMEOUT_S, threads=_threads(contender), processes=1)
    roles = [role for role, _ in sides]
    blocks: list[list[list[float]]] = [[] for _ in sides]
    outcome, reason, ratio, p_value, done = "undecided", "", None, None, 0
    with session.stage(definition, contender.device, mode=contender.mode, measure_power=False) as ready:
        sweep = ready.sweep(settings, threads=settings.threads, include_copies=bool(contender.include_copies))
        while done < sessions:
            done += 1
            session.log(f"{'A/A check' if aa else 'confirm'} {contender.model} ({contender.backend}): session {done} "
                        f"of at most {sessions}")
            paired = measure(sweep, models, contender.backend, pairing, precision=contender.precision, roles=roles,
                             batch=contender.batch, pythons=pythons)
            failed = [f"{role}: {entry.error}" for role, entry in zip(roles, paired.entries) if not entry.ok]
            if failed:
                session.keep_all(_labelled(paired, verdict, reference, done, aa))
                return Confirmation(verdict, "undecided", "the paired measurement failed: " + "; ".join(failed),
                                    ratio, p_value, sessions=done)
            for pooled, entry in zip(blocks, paired.entries):
                pooled.extend(entry.blocks)
            ratio = ratio_of(blocks[1], blocks[0])
            p_value = min(1.0, one_sided_p(ratio) * sessions)
            outcome, reason = decide(ratio, p_value, verdict.rule.threshold, report.alpha)
            look = {"outcome": outcome, "ratio": ratio.as_dict(), "p_value": p_value,
                    "final": outcome != "undecided" or done == sessions}
            session.keep_all(_labelled(paired, verdict, reference, done, aa, look))
            if outcome != "undecided":
                break
    notes += unrestored(roles, records, paired, reference_python)
    golden = ratio_of(blocks[1], blocks[2]) if len(sides) == 3 else None
    reason = "; ".join([reason, *notes])
    return Confirmation(verdict, outcome, reason, ratio, p_value, sessions=done, golden=golden,
                        golden_run=pinned.run_id if pinned is not None else None)


def measured_file_role(record: Record) -> Optional[str]:
    """The role of the ONNX file a confirmation measures the record by: its own ONNX model, else
    the ONNX export a torch model was measured by; None when it kept neither."""
    if any(a.role == "model" and a.name.endswith(".onnx") for a in record.artifacts):
        return "model"
    return "onnx" if any(a.role == "onnx" for a in record.artifacts) else None


def _restored(artifacts: ArtifactStore, record: Record, out_dir: Path):
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


def _labelled(paired: PairedMeasurement, verdict: Verdict, reference: Record, session_number: int, aa: bool,
              look: Optional[dict[str, Any]] = None) -> list[Record]:
    """The records as the store keeps them: which key and runs they confirm, whether against
    itself, what the rule said after this session; no model spec (a temporary path), so no history
    follows them."""
    origin = {"contender_run": verdict.contender.run_id, "reference_run": reference.run_id,
              "model_spec": verdict.contender.model_spec, "session": session_number, "aa": aa,
              **({"look": look} if look is not None else {})}
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

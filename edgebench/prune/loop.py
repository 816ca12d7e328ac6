"""The measured pruning loop (NetAdapt's, with the target as the judge).

Each iteration: score the channels of the current model (L1, HRank, Taylor, utilisation or a
registered criterion: ``edgebench.prune.importance``), propose for every
prunable group the smallest aligned cut expected to remove ``step`` of the current latency (or
MACs), build each candidate with Torch-Pruning, and measure all of them in one paired run per
backend against the current model and the baseline. With ``--objective latency`` a candidate goes
on only when the 95% interval of its latency ratio to the current model is below 1 on every
backend; then it gets a short fine-tune and an accuracy check against the floor. Of the survivors
the one that loses the least accuracy per unit of gain is chosen, and kept only when a fresh paired
run confirms it faster (``edgebench.prune.keep_rule``); a refuted choice keeps nothing and the next
iteration screens the same model again. The loop stops at the budget (the kept model over the
baseline, measured in the same paired run), when no candidate survives, when the fresh run refutes
the choice ``REFUTED_IN_A_ROW`` iterations in a row, or after ``max_iterations``. ``--objective flops`` runs the same loop with MACs as the metric and
the gain, measuring and recording every candidate all the same.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from edgebench.errors import UsageError
from edgebench.models.artifacts import forget_exports, onnx_for
from edgebench.models.resolve import ResolvedModel
from edgebench.prune.baseline import Prunable, measured_part, saved_model, trained_baseline
from edgebench.prune import keep_rule
from edgebench.prune.importance import channel_scores
from edgebench.prune.model_stats import model_stats
from edgebench.sweep.paired import (CONFIRM_BLOCK_S, CONFIRM_ROUNDS, Pairing, PairedMeasurement, Ratio,
                                    measure_paired)
from edgebench.prune.proposals import Proposal, propose
from edgebench.prune.regularise import DEFAULT_STEPS as REG_STEPS, DEFAULT_STRENGTH as REG_STRENGTH
from edgebench.prune.surgery import Graph, build_graph, macs_and_params, pruned_copy
from edgebench.prune.zero_pad import Padding
from edgebench.results.pruned import FINAL_STAGE
from edgebench.results.record import Record
from edgebench.sweep.execute import Sweep

OBJECTIVES = ("latency", "flops")
# --staircase: a wider width counts as no slower when its interval ends at most this far above 1.
STAIR_TOLERANCE = 0.02
# An iteration where no candidate cleared the noise, but some measured faster, is measured once
# more with this many times the rounds before the loop gives up.
RETRY_ROUNDS_FACTOR = 2
NOT_FASTER = "not significantly faster than the current model"
NOT_CONFIRMED = "not confirmed faster in a fresh paired run"
# Iterations in a row whose chosen candidate the fresh run refuted before the loop stops: one
# refutation keeps nothing and screens again (a burst of interference, or a chance pick); two say
# the gains left are too small to show.
REFUTED_IN_A_ROW = 2
# The last comparison of the final model with the baseline gets this many times the rounds.
FINAL_ROUNDS_FACTOR = 2
# Backends that run the ONNX export, whose size the final figures then report.
ONNX_BACKENDS = {"onnxruntime", "tensorrt"}


@dataclass(frozen=True)
class PruneConfig:
    objective: str = "latency"
    budget: float = 0.5
    # --strategy allocate: (backend, budget) pairs that replace ``budget`` on those backends
    backend_budgets: tuple[tuple[str, float], ...] = ()
    max_accuracy_drop: float = 0.01
    criterion: str = "l1"
    round_to: int = 8
    step: float = 0.1
    max_iterations: int = 30
    finetune_steps: int = 20
    final_finetune_steps: int = 200
    train_steps: int = 200
    staircase: bool = False
    score_inputs: Optional[int] = None  # training inputs a data-driven criterion scores from (None: its own)
    strategy: str = "greedy"
    threshold: float = 0.05  # --strategy static: channels scoring under it go
    ratio: Optional[float] = None  # --strategy static: this share of every group's channels goes instead
    residual: str = "coupled"  # --strategy static: "zero-pad" cuts residual branches alone (prune.zero_pad)
    # --strategy static: train a copy of the baseline this many steps before the cut, with a
    # group-sparsity regulariser ("group-norm") or without ("none"); None: cut the baseline (prune.regularise)
    regularise: Optional[str] = None
    reg_strength: float = REG_STRENGTH
    reg_steps: int = REG_STEPS
    pairing: Pairing = field(default_factory=Pairing)
    # The keep rule's confirmation: short blocks, many rounds (a narrower interval at equal time).
    confirm_pairing: Pairing = field(default_factory=lambda: Pairing(rounds=CONFIRM_ROUNDS, block_s=CONFIRM_BLOCK_S))

    def budget_on(self, backend: str) -> float:
        """The latency budget on ``backend``: its own, if given, else ``budget``."""
        return dict(self.backend_budgets).get(backend, self.budget)


@dataclass
class Candidate:
    iteration: int
    proposal: Proposal
    module: torch.nn.Module
    history_entry: list
    resolved: ResolvedModel
    macs: int
    params: int
    ratio_to_current: dict[str, Optional[Ratio]] = field(default_factory=dict)
    ratio_to_baseline: dict[str, Optional[Ratio]] = field(default_factory=dict)
    latency_ms: dict[str, Optional[float]] = field(default_factory=dict)
    accuracy: Optional[float] = None
    verdict: str = "rejected"
    reason: str = ""
    # The keep rule's fresh paired run of the chosen candidate: its ratios to the current model and the baseline.
    confirmation: Optional[dict[str, dict[str, Optional[Ratio]]]] = None

    def step_dict(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "group": self.proposal.group,
            "channels": [self.proposal.width, self.proposal.keep],
            "macs": self.macs,
            "params": self.params,
            "latency_ms": self.latency_ms,
            "ratio_to_current": {b: r.as_dict() if r else None for b, r in self.ratio_to_current.items()},
            "ratio_to_baseline": {b: r.as_dict() if r else None for b, r in self.ratio_to_baseline.items()},
            "accuracy": self.accuracy,
            "verdict": self.verdict,
            "reason": self.reason,
            "confirmation": None if self.confirmation is None else {
                key: {b: r.as_dict() if r else None for b, r in ratios.items()}
                for key, ratios in self.confirmation.items()},
        }


@dataclass(frozen=True)
class Baseline:
    """The model pruning starts from, its file for the worker and what it scored."""

    module: torch.nn.Module
    resolved: ResolvedModel
    training: dict
    accuracy: float
    floor: float
    macs: int
    params: int


@dataclass
class Outcome:
    """What the loop ends with: the kept model, its replayable history (Torch-Pruning's, then the
    zero-padded branches') and the report's data."""

    model: torch.nn.Module
    history: list
    report: dict[str, Any]
    paddings: list[Padding] = field(default_factory=list)
    #: The baseline and the final model as the worker loads them (the final comparison's pair),
    #: for measurements after the loop (``edgebench.prune.mode_table``).
    compared: Optional[tuple[ResolvedModel, ResolvedModel]] = None


class Pruner:
    """Runs the loop; ``log`` gets progress lines, ``keep_records`` every measured record.
    Another strategy (``edgebench.prune.static``) subclasses it and replaces ``run``. ``measure``
    is the paired measurement (``measure_paired``'s signature); tests script it."""

    def __init__(self, task, sweep: Sweep, backends: list[str], config: PruneConfig, workdir: Path,
                 keep_records: Callable[[list[Record]], None], log: Callable[[str], None] = lambda line: None,
                 measure: Callable[..., PairedMeasurement] = measure_paired):
        self.task = task
        self.sweep = sweep
        self.backends = backends
        self.config = config
        self.workdir = workdir
        self.keep_records = keep_records
        self.log = log
        self.measure = measure
        self.example_input = task.example_input
        self.input_shape = "x".join(str(d) for d in self.example_input.shape[1:])
        self.metric = getattr(task, "metric", "score")  # the task's headline metric, for the log

    # -- the baseline ---------------------------------------------------------------------

    def baseline(self, prunable: Prunable) -> Baseline:
        """The model to prune, trained when untrained, its file for the worker and its scores."""
        resolved = prunable.resolved
        self.recipe = resolved.recipe  # what rebuilds the architecture the pruning history replays on
        self.model_name = resolved.name
        module, training = trained_baseline(resolved, self.task, self.config.train_steps, self.log)
        self.part = measured_part(module, prunable.part)
        accuracy = self.task.evaluate(module)
        floor = accuracy - self.config.max_accuracy_drop
        macs, params = macs_and_params(module, self.example_input)
        measured = f" (measured: its {self.part})" if self.part else ""
        self.log(f"baseline{measured}: {self.metric} {accuracy:.2%}, {macs / 1e6:.1f} M MACs, "
                 f"{params / 1e6:.2f} M parameters; floor {floor:.2%}")
        return Baseline(module, self.materialize(module, "baseline", self.model_name), training, accuracy, floor,
                        macs, params)

    def materialize(self, module: torch.nn.Module, stem: str, name: str) -> ResolvedModel:
        """``module`` as a file the worker loads, resolved like any model spec, shown as ``name``
        (with the measured part, for a detector)."""
        return saved_model(module, self.workdir / f"{stem}.pt", self.input_shape, name, self.part)

    def graph(self, model: torch.nn.Module, first: bool) -> Graph:
        """The model's prunable groups; the first time, the log and the report say what is kept."""
        graph = build_graph(model, self.example_input)
        if first:
            self.kept = [dataclasses.asdict(kept) for kept in graph.kept]
            self.log(graph.describe_kept())
        return graph

    # -- the loop ---------------------------------------------------------------------------

    def run(self, prunable: Prunable) -> Outcome:
        """Prune ``prunable`` (from ``edgebench.prune.baseline.prunable_model``)."""
        config = self.config
        started = time.perf_counter()
        base = self.baseline(prunable)
        current, baseline_model, floor = base.module, base.resolved, base.floor
        current_model, accuracy, macs = baseline_model, base.accuracy, base.macs
        history: list = []
        steps: list[dict] = []
        rates: dict[str, float] = {}
        baseline_latency: dict[str, float] = {}
        ratio_to_baseline: dict[str, Optional[Ratio]] = {b: None for b in self.backends}
        stop_reason = f"stopped after {config.max_iterations} iterations"
        refuted_in_a_row = 0
        for iteration in range(1, config.max_iterations + 1):
            graph = self.graph(current, first=iteration == 1)
            proposals = propose(graph, config.step, config.round_to, rates, config.objective)
            if not proposals:
                stop_reason = "no group can lose more channels at this alignment"
                break
            scores = channel_scores(config.criterion, current, graph.groups, self.task, config.score_inputs)
            candidates = [self._candidate(iteration, graph, proposal, scores[proposal.group])
                          for proposal in proposals]
            self.log(f"iteration {iteration}: {len(candidates)} candidates, measuring on "
                     f"{', '.join(self.backends)}")
            pending, _ = self._measure(iteration, current_model, baseline_model, candidates, baseline_latency,
                                       ratio_to_baseline)
            try:
                chosen = self._judge(candidates, accuracy, macs, floor)
                undecided = [c for c in candidates if c.reason.startswith(NOT_FASTER) and
                             keep_rule.undecided(c.ratio_to_current)]
                if chosen is None and undecided:
                    # A burst of interference can widen every interval past the gains; look again, longer.
                    self.log(f"iteration {iteration}: {len(undecided)} candidate(s) measured faster but not "
                             f"significantly; measuring them again with {RETRY_ROUNDS_FACTOR}x the rounds")
                    for candidate in undecided:
                        candidate.reason = ""
                    retry = dataclasses.replace(config.pairing, rounds=config.pairing.rounds * RETRY_ROUNDS_FACTOR)
                    again, _ = self._measure(iteration, current_model, baseline_model, undecided, baseline_latency,
                                             ratio_to_baseline, pairing=retry)
                    pending += again
                    chosen = self._judge(undecided, accuracy, macs, floor)
                for candidate in candidates:
                    rates.update(self._rate(candidate))
                if chosen is not None and config.staircase:
                    chosen, probes, probe_records = self._snap(iteration, graph, chosen, scores[chosen.proposal.group],
                                                               current_model, baseline_model, baseline_latency, floor)
                    pending += probe_records
                    candidates += probes
                if chosen is not None and config.objective == "latency":
                    chosen, confirmation_records = self._confirm(iteration, chosen, current_model, baseline_model)
                    pending += confirmation_records
            except KeyboardInterrupt:
                # What was measured stays: the records go to the store, without a verdict.
                for candidate in candidates:
                    candidate.reason = candidate.reason or "interrupted before a verdict"
                self.keep_records(self._annotate(pending, candidates, None))
                raise
            self.keep_records(self._annotate(pending, candidates, chosen))
            steps += [candidate.step_dict() for candidate in candidates]
            self._discard(candidates)
            refuted = chosen is None and any(c.reason.startswith(NOT_CONFIRMED) for c in candidates)
            refuted_in_a_row = refuted_in_a_row + 1 if refuted else 0
            if refuted and refuted_in_a_row < REFUTED_IN_A_ROW:
                self.log(f"iteration {iteration}: nothing kept; screening the same model again")
                continue
            if chosen is None:
                stop_reason = f"the chosen candidate was {NOT_CONFIRMED} in {REFUTED_IN_A_ROW} iterations in a row" \
                    if refuted else f"no candidate was both faster and within the allowed {self.metric} drop" \
                    if config.objective == "latency" else f"no candidate kept the {self.metric} within the allowed drop"
                break
            current, accuracy, macs = chosen.module, chosen.accuracy, chosen.macs
            history.append(chosen.history_entry)
            current_model = self.materialize(current, f"kept-{iteration:02d}",
                                             f"{self.model_name} [pruned, step {iteration}]")
            # The confirmation's ratio, from a run that played no part in the choice, when there is one.
            ratio_to_baseline = dict(chosen.confirmation["ratio_to_baseline"] if chosen.confirmation
                                     else chosen.ratio_to_baseline)
            self.log(f"iteration {iteration}: kept {chosen.proposal.group} {chosen.proposal.width}->"
                     f"{chosen.proposal.keep}: {self._progress(ratio_to_baseline, baseline_latency)}, {self.metric} "
                     f"{accuracy:.2%}, MACs {macs / base.macs:.2f}x")
            if self._within_budget(ratio_to_baseline, macs / base.macs):
                stop_reason = f"budget reached ({config.objective} at most {config.budget:g} of the baseline)"
                break
        return self._finish(current, history, steps, stop_reason, started, base, baseline_latency)

    def _candidate(self, iteration: int, graph, proposal: Proposal, scores: torch.Tensor) -> Candidate:
        module, entry = pruned_copy(graph, proposal.group, proposal.keep, scores)
        macs, params = macs_and_params(module, self.example_input)
        name = f"{self.model_name} [candidate {iteration}: {proposal.group} {proposal.width}->{proposal.keep}]"
        resolved = self.materialize(module, f"candidate-{iteration:02d}-{proposal.group}-{proposal.keep}", name)
        return Candidate(iteration, proposal, module, entry, resolved, macs, params)

    def _snap(self, iteration: int, graph, chosen: Candidate, scores: torch.Tensor, current: ResolvedModel,
              baseline: ResolvedModel, baseline_latency: dict[str, float],
              floor: float) -> tuple[Candidate, list[Candidate], list[tuple[Record, dict]]]:
        """``--staircase``: latency falls in steps as channels go (kernels work in vector-width
        blocks), so the kept width may sit anywhere on its stair. Probe wider widths, up to two
        alignments more, measured against the kept candidate and the current model; the widest
        that is no slower than the kept one (95% interval at most ``STAIR_TOLERANCE`` above it) and
        still significantly faster than the current model takes its place if it is as accurate."""
        proposal = chosen.proposal
        stride = max(1, self.config.round_to // 4)
        widths = range(proposal.keep + stride, min(proposal.width, proposal.keep + 2 * self.config.round_to), stride)
        probes = [self._candidate(iteration, graph, Proposal(proposal.group, proposal.width, width), scores)
                  for width in widths]
        if not probes:
            return chosen, [], []
        again = dataclasses.replace(chosen, ratio_to_current={}, ratio_to_baseline={}, latency_ms={})
        self.log(f"iteration {iteration}: probing {len(probes)} wider widths of {proposal.group} (staircase)")
        pending, paireds = self._measure(iteration, current, baseline, [again] + probes, baseline_latency, {},
                                         role="stair probe")
        pending = [item for item in pending if item[1]["role"] == "stair probe"]
        no_slower = []
        for index, probe in enumerate(probes, start=3):
            to_chosen = {backend: paired.ratio(index, 2) for backend, paired in paireds.items()}
            shown = "; ".join(f"{backend} {ratio}" for backend, ratio in to_chosen.items())
            probe.reason = f"stair probe: latency over the kept width's {shown}"
            if all(r is not None and r.high <= 1 + STAIR_TOLERANCE for r in to_chosen.values()) and \
                    all(r is not None and r.faster for r in probe.ratio_to_current.values()):
                no_slower.append(probe)
        if not no_slower:
            return chosen, probes, pending
        widest = max(no_slower, key=lambda probe: probe.proposal.keep)
        self.task.finetune(widest.module, self.config.finetune_steps)
        widest.accuracy = self.task.evaluate(widest.module)
        if widest.accuracy < max(floor, chosen.accuracy):
            widest.reason += f"; {self.metric} {widest.accuracy:.2%} is under the kept width's {chosen.accuracy:.2%}"
            return chosen, probes, pending
        widest.verdict, chosen.verdict = "kept", "rejected"
        widest.reason += "; the cheap edge of the stair: as fast as the kept width, with more channels"
        chosen.reason = f"widened to {widest.proposal.keep} channels at no measured cost (--staircase)"
        return widest, probes, pending

    def _confirm(self, iteration: int, chosen: Candidate, current: ResolvedModel,
                 baseline: ResolvedModel) -> tuple[Optional[Candidate], list[tuple[Record, dict]]]:
        """The keep rule's confirmation (``edgebench.prune.keep_rule``): the chosen candidate measured
        again with the current model and the baseline in a fresh paired run; it stays chosen only
        when that run finds it faster at ``keep_rule.CONFIRM_ALPHA`` on every backend."""
        again = dataclasses.replace(chosen, ratio_to_current={}, ratio_to_baseline={}, latency_ms={}, reason="")
        self.log(f"iteration {iteration}: confirming {chosen.proposal.group} {chosen.proposal.width}->"
                 f"{chosen.proposal.keep} in a fresh paired run")
        pending, _ = self._measure(iteration, current, baseline, [again], {}, {}, role="confirmation",
                                   pairing=self.config.confirm_pairing)
        chosen.confirmation = {"ratio_to_current": again.ratio_to_current, "ratio_to_baseline": again.ratio_to_baseline}
        if keep_rule.confirmed(again.ratio_to_current):
            return chosen, pending
        shown = "; ".join(f"{backend} {ratio if ratio else again.reason}"
                          for backend, ratio in again.ratio_to_current.items())
        chosen.verdict = "rejected"
        chosen.reason = (f"{NOT_CONFIRMED} (faster by more than {keep_rule.CONFIRM_MARGIN:.0%} at one-sided alpha "
                         f"{keep_rule.CONFIRM_ALPHA:g}): {shown}")
        self.log(f"iteration {iteration}: {chosen.proposal.group} {chosen.reason}")
        return None, pending

    def _measure(self, iteration: int, current: ResolvedModel, baseline: ResolvedModel,
                 candidates: list[Candidate], baseline_latency: dict[str, float],
                 ratio_to_baseline: dict[str, Optional[Ratio]], role: str = "candidate",
                 pairing: Optional[Pairing] = None) -> tuple[list[tuple[Record, dict]], dict[str, PairedMeasurement]]:
        """One paired run per backend: the current model, the baseline, then every candidate."""
        models = [current, baseline] + [c.resolved for c in candidates]
        roles = ["current", "baseline"] + [role] * len(candidates)
        pending, paireds = [], {}
        for backend in self.backends:
            paired = self.measure(self.sweep, models, backend, pairing or self.config.pairing, roles=roles)
            self._check_reference(paired, backend)
            baseline_latency.setdefault(backend, paired.entries[1].p50_ms)
            ratio_to_baseline[backend] = paired.ratio(0, 1)
            for index, candidate in enumerate(candidates, start=2):
                entry = paired.entries[index]
                candidate.ratio_to_current[backend] = paired.ratio(index, 0)
                candidate.ratio_to_baseline[backend] = paired.ratio(index, 1)
                candidate.latency_ms[backend] = entry.p50_ms if entry.ok else None
                if not entry.ok:
                    candidate.reason = f"{backend}: {entry.error}"
            pending += [(entry.record, {"iteration": iteration, "role": role})
                        for entry, role in zip(paired.entries, roles)]
            paireds[backend] = paired
        return pending, paireds

    @staticmethod
    def _discard(candidates: list[Candidate]) -> None:
        """Delete the candidates' files and exports (the kept one is saved again as the current)."""
        for candidate in candidates:
            forget_exports(candidate.resolved, 1)
            Path(candidate.resolved.recipe["path"]).unlink(missing_ok=True)

    @staticmethod
    def _check_reference(paired: PairedMeasurement, backend: str) -> None:
        reference = paired.entries[0]
        if not reference.ok:
            raise UsageError(f"{backend} cannot measure the current model: {reference.error}")

    def _rate(self, candidate: Candidate) -> dict[str, float]:
        """The share of the current latency one channel of the candidate's group saved, on the
        backend that gained least."""
        ratios = list(candidate.ratio_to_current.values())
        if not ratios or any(r is None for r in ratios):
            return {}
        saved = 1.0 - max(r.ratio for r in ratios)
        return {candidate.proposal.group: saved / candidate.proposal.removed}

    def _judge(self, candidates: list[Candidate], accuracy: float, macs: int, floor: float) -> Optional[Candidate]:
        """Fine-tune and check the candidates that gained; keep the cheapest gain in accuracy."""
        survivors = []
        for candidate in candidates:
            if candidate.reason:  # failed to measure
                continue
            gain = self._gain(candidate, macs)
            if gain is None:
                continue
            self.task.finetune(candidate.module, self.config.finetune_steps)
            candidate.accuracy = self.task.evaluate(candidate.module)
            if candidate.accuracy < floor:
                candidate.reason = (f"{self.metric} {candidate.accuracy:.2%} after {self.config.finetune_steps} "
                                    f"fine-tuning steps is under the floor {floor:.2%}")
                continue
            survivors.append((max(accuracy - candidate.accuracy, 0.0) / gain, -gain, candidate))
        if not survivors:
            return None
        survivors.sort(key=lambda item: (item[0], item[1]))
        chosen = survivors[0][2]
        chosen.verdict = "kept"
        chosen.reason = (f"least {self.metric} lost per unit of {self.config.objective} gained among "
                         f"{len(survivors)} verified candidate(s)")
        for _, _, other in survivors[1:]:
            other.reason = f"verified, but {chosen.proposal.group} lost less {self.metric} per unit of gain"
        return chosen

    def _gain(self, candidate: Candidate, macs: int) -> Optional[float]:
        """The candidate's gain over the current model, or None (with the reason set) when it has none."""
        if self.config.objective == "flops":
            return 1.0 - candidate.macs / macs
        if not keep_rule.faster(candidate.ratio_to_current):
            slower = [f"{backend} {ratio}" for backend, ratio in candidate.ratio_to_current.items()
                      if ratio is None or not ratio.faster]
            candidate.reason = f"{NOT_FASTER}: " + "; ".join(slower)
            return None
        return 1.0 - max(ratio.ratio for ratio in candidate.ratio_to_current.values())

    def _annotate(self, pending: list[tuple[Record, dict]], candidates: list[Candidate],
                  chosen: Optional[Candidate]) -> list[Record]:
        """Each record with what the pruner made of it, under ``env.prune``."""
        by_name = {c.resolved.name: c for c in candidates}
        records = []
        for record, prune in pending:
            candidate = by_name.get(record.model) if prune["role"] in ("candidate", "stair probe", "confirmation") \
                else None
            if candidate is not None:
                prune = {**prune, **candidate.step_dict(), "objective": self.config.objective,
                         "criterion": self.config.criterion, "residual": self.config.residual}
            records.append(record.model_copy(update={"env": {**record.env, "prune": prune}}))
        return records

    def _progress(self, ratio_to_baseline: dict[str, Optional[Ratio]], baseline_latency: dict[str, float]) -> str:
        parts = []
        for backend, ratio in ratio_to_baseline.items():
            if ratio is not None and backend in baseline_latency:
                parts.append(f"{backend} {ratio.ratio:.2f}x baseline (~{ratio.ratio * baseline_latency[backend]:.2f} ms)")
        return ", ".join(parts) or "latency unknown"

    def _within_budget(self, ratio_to_baseline: dict[str, Optional[Ratio]], macs_ratio: float) -> bool:
        if self.config.objective == "flops":
            return macs_ratio <= self.config.budget
        ratios = list(ratio_to_baseline.values())
        return all(r is not None for r in ratios) and max(r.ratio for r in ratios) <= self.config.budget

    # -- the end ----------------------------------------------------------------------------

    def _figures(self, module: torch.nn.Module, resolved: ResolvedModel, score: float) -> dict[str, Any]:
        """The model on paper and every metric the task computes, for the per-network table
        (``edgebench compare --pruned``); the ONNX size when a backend runs the export."""
        onnx_file = onnx_for(resolved, 1) if set(self.backends) & ONNX_BACKENDS else None
        metrics = self.task.metrics(module) if callable(getattr(self.task, "metrics", None)) else {}
        return {"model": model_stats(module, self.example_input, self.part, onnx_file),
                "metrics": {**metrics, self.metric: score}}

    def _finish(self, model: torch.nn.Module, history: list, steps: list[dict], stop_reason: str, started: float,
                base: Baseline, baseline_latency: dict[str, float], paddings: Sequence[Padding] = ()) -> Outcome:
        config, baseline_model, floor = self.config, base.resolved, base.floor
        accuracy = self.task.evaluate(model)
        notes = []
        pruned = bool(history or paddings)
        if pruned and config.final_finetune_steps:
            self.log(f"final fine-tune: {config.final_finetune_steps} steps")
            before = copy.deepcopy(model.state_dict())
            self.task.finetune(model, config.final_finetune_steps)
            tuned = self.task.evaluate(model)
            if tuned < accuracy:
                # SGD can end on a worse point than it started from; never hand back the worse one.
                model.load_state_dict(before)
                notes.append(f"the final fine-tune lowered {self.metric} from {accuracy:.2%} to {tuned:.2%}; the "
                             "weights from before it are kept")
            else:
                accuracy = tuned
        if accuracy < floor:
            notes.append(f"final {self.metric} {accuracy:.2%} is under the floor {floor:.2%}")
        macs, params = macs_and_params(model, self.example_input)
        final_model = self.materialize(model, "final", f"{self.model_name} [pruned, final]")
        final: dict[str, Any] = {"accuracy": accuracy, "macs": macs, "params": params, "latency_ms": {},
                                 "latency_ratio": {}}
        baseline: dict[str, Any] = {"accuracy": base.accuracy, "macs": base.macs, "params": base.params,
                                    "latency_ms": {}, "training": base.training}
        pairing = dataclasses.replace(config.pairing, rounds=config.pairing.rounds * FINAL_ROUNDS_FACTOR)
        figures = {"baseline": self._figures(base.module, baseline_model, base.accuracy),
                   "final": self._figures(model, final_model, accuracy)}
        records, warnings = [], notes
        for backend in self.backends:
            paired = self.measure(self.sweep, [baseline_model, final_model], backend, pairing,
                                  roles=["baseline", "final"])
            self._check_reference(paired, backend)
            ratio = paired.ratio(1, 0)
            baseline["latency_ms"][backend] = paired.entries[0].p50_ms
            final["latency_ms"][backend] = paired.entries[1].p50_ms if paired.entries[1].ok else None
            final["latency_ratio"][backend] = ratio.as_dict() if ratio else None
            if pruned and (ratio is None or not ratio.faster):
                warnings.append(f"the final model is not significantly faster than the baseline on {backend}: "
                                f"{ratio if ratio else paired.entries[1].error}")
            records += [entry.record.model_copy(update={"env": {**entry.record.env, "prune": {
                "role": role, "stage": FINAL_STAGE, "metric": self.metric, "metrics": figures[role]["metrics"],
                "model": figures[role]["model"], "residual": config.residual}}})
                for entry, role in zip(paired.entries, ["baseline", "final"])]
            baseline["model_stats"], final["model_stats"] = figures["baseline"]["model"], figures["final"]["model"]
            baseline["metrics"], final["metrics"] = figures["baseline"]["metrics"], figures["final"]["metrics"]
        self.keep_records(records)
        report = {
            "strategy": config.strategy, **(_static_rule(config) if config.strategy == "static" else {}),
            "objective": config.objective, "budget": config.budget,
            **({"backend_budgets": dict(config.backend_budgets)} if config.backend_budgets else {}),
            "max_accuracy_drop": config.max_accuracy_drop,
            "criterion": config.criterion, "residual": config.residual,
            "zero_padded": [padding.as_dict() for padding in paddings], "round_to": config.round_to, "staircase": config.staircase, "step": config.step,
            "finetune_steps": config.finetune_steps, "final_finetune_steps": config.final_finetune_steps,
            "pairing": dataclasses.asdict(config.pairing), "backends": list(self.backends),
            "score_inputs": config.score_inputs, "task": self.task.name, "metric": self.metric,
            "model": self.model_name, "measured_part": self.part, "kept_layers": self.kept, "accuracy_floor": floor,
            "keep_rule": keep_rule.describe(RETRY_ROUNDS_FACTOR, config.confirm_pairing)
            if config.strategy == "greedy" and config.objective == "latency" else None,
            "stop_reason": stop_reason, "warnings": warnings,
            "baseline": baseline, "final": final, "steps": steps,
            "kept_steps": sum(1 for step in steps if step.get("verdict") == "kept"),
            "wall_s": round(time.perf_counter() - started, 1),
        }
        return Outcome(model, history, report, list(paddings), compared=(baseline_model, final_model))


def _static_rule(config: PruneConfig) -> dict[str, float]:
    """The static cut's rule for the report: a share of every group, or a score threshold."""
    return {"threshold": config.threshold} if config.ratio is None else {"ratio": config.ratio}

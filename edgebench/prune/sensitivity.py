"""``edgebench sensitivity``: each prunable group cut alone at a range of sparsities, its task metric
and its latency measured on the target (Distiller's sensitivity analysis, with the target as the
judge of latency).

The baseline is trained when untrained, as the pruner's is (``Pruner.baseline``); its channels are
scored once with ``--criterion``. For each group, every sparsity gives a candidate with only that
group cut: its ``sparsity`` lowest-scoring channels go, the kept count rounded up to ``--round-to``
(``prune.static.ratio_cut``), so two sparsities may give one width, which is then built and
measured once. Each candidate gets ``--finetune-steps`` (default none: Distiller's analysis does
not fine-tune) and the task's metric. Then one paired run per backend measures the unpruned model,
a second copy of it and every candidate of the group (``Pruner._measure``, as a greedy iteration
is measured): each candidate's ratio is to the copy, and sparsity 0.0 is the unpruned model
itself, so its ratio is an A/A check of the pairing (near 1 when the measurement can be trusted).

Power modes (``--mode A,B``): the metric does not depend on the mode, so each group is cut and
evaluated once; its paired measurement runs in every mode. The modes are the outer loop: one
stage (switch, measure every group, restore) per mode is one mode switch per mode, where a stage
per group and mode would switch groups x modes times, each a board link and an nvpmodel call.
The price is disk: a group's candidate files stay until the last mode has measured them.

The results go to ``outputs`` (``edgebench.prune.sensitivity_outputs``) a group and mode at a time,
so an interrupted analysis keeps every group it measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Optional, Protocol

import torch

from edgebench.errors import UsageError
from edgebench.models.fingerprint import module_fingerprint
from edgebench.prune.baseline import Prunable
from edgebench.prune.importance import channel_scores
from edgebench.prune.loop import Baseline, Candidate, Pruner
from edgebench.prune.proposals import Proposal
from edgebench.prune.static import ratio_cut
from edgebench.prune.surgery import build_graph, cut, macs_and_params
from edgebench.results.record import Record
from edgebench.sweep.execute import Sweep
from edgebench.sweep.paired import Ratio

DEFAULT_SPARSITIES = tuple(round(0.1 * step, 1) for step in range(10))
AA_NOTE = "unpruned: its ratio is an A/A check (the same model twice in the pair)"


@dataclass(frozen=True)
class Point:
    """One row of ``sensitivity.csv``: a group cut alone at one sparsity."""

    group: str
    sparsity: float
    channels_before: int
    channels_after: int
    macs: int
    params: int
    metric: str
    value: float
    drop: float  # the baseline's metric minus this one
    latency_ms: dict[str, Optional[float]]
    ratio: dict[str, Optional[Ratio]]  # latency over the unpruned model's, paired
    note: str = ""
    mode: Optional[str] = None  # the power mode the latency was measured in; None: no --mode given


class Outputs(Protocol):
    """Where the analysis puts what it measured (``sensitivity_outputs.SensitivityOutputs``)."""

    def start(self, report: dict) -> None: ...

    def add(self, points: list[Point]) -> None: ...  # one group's points in one mode

    def finish(self, report: dict) -> None: ...


def chosen_groups(module: torch.nn.Module, example_input: torch.Tensor, names: Sequence[str]) -> list[str]:
    """The prunable groups of ``module`` in model order, or those named; UsageError for a name that
    is not a group (the groups are named by root module, the same untrained or trained)."""
    groups = in_model_order(module, build_graph(module, example_input).groups)
    unknown = [name for name in names if name not in groups]
    if unknown:
        raise UsageError(f"--groups: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a prunable "
                         f"group of this model; its groups: {', '.join(groups)}")
    return [group for group in groups if group in names] if names else groups


def in_model_order(module: torch.nn.Module, groups: Sequence[str]) -> list[str]:
    """Group names in the order of their root modules in ``module`` (the graph lists them backwards)."""
    order = {name: index for index, (name, _) in enumerate(module.named_modules())}
    return sorted(groups, key=order.__getitem__)


# The board in one power mode (None: as it is) for a block, and the paired sweep made there.
Stages = Callable[[Optional[str]], AbstractContextManager[Sweep]]


@dataclass
class GroupCuts:
    """One group's candidates, cut and evaluated once, for the measurement in every mode."""

    index: int
    group: str
    width: int
    drops: dict[float, list[int]]  # sparsity -> the channels it cuts
    candidates: dict[int, Candidate]  # kept width -> its candidate


class SensitivityAnalysis(Pruner):
    """The pruner's machinery (baseline, model files, the paired measurement, discarding files) with
    ``run`` measuring sensitivities instead of pruning: it returns the report, not a pruned model.
    ``stages(mode)`` puts the board in each mode for its measurements; the sweep given to the
    constructor is unused (None)."""

    def __init__(self, *args, sparsities: Sequence[float] = DEFAULT_SPARSITIES, groups: Sequence[str] = (),
                 stages: Stages, modes: Sequence[Optional[str]] = (None,), **kwargs):
        super().__init__(*args, **kwargs)
        self.sparsities = sorted(set(sparsities) | {0.0})
        self.chosen = list(groups)
        self.stages = stages
        self.modes = list(modes)

    def run(self, prunable: Prunable, outputs: Outputs,  # type: ignore[override]
            settings: Optional[dict] = None) -> dict:
        """Measure every chosen group in every mode into ``outputs``; ``settings`` (target, run id: read
        again in each stage) go into the report, which is returned."""
        started = time.perf_counter()
        base = self.baseline(prunable)
        graph = self.graph(base.module, first=True)
        groups = self.chosen or in_model_order(base.module, graph.groups)
        scores = channel_scores(self.config.criterion, base.module, {g: graph.groups[g] for g in groups}, self.task,
                                self.config.score_inputs)
        report = self._report(prunable, base, groups, settings or {})
        cuts: dict[str, GroupCuts] = {}
        for mode_index, mode in enumerate(self.modes):
            last_mode = mode_index == len(self.modes) - 1
            in_mode = f" in {mode}" if mode else ""
            with self.stages(mode) as sweep:
                self.sweep = sweep
                report.update(settings or {})  # the caller's, as the stage left them: the run id once it started
                if mode_index == 0:
                    outputs.start(report)  # report.json with the run's id
                for index, group in enumerate(groups, start=1):
                    if group not in cuts:  # cut and evaluated in the first mode, measured in each
                        cuts[group] = self._cuts(index, graph, group, scores[group])
                    points = self._points(cuts[group], base, mode, len(groups))
                    if last_mode:
                        self._discard(list(cuts.pop(group).candidates.values()))
                    outputs.add(points)
                    if group not in report["measured_groups"]:
                        report["measured_groups"].append(group)
                    self.log(f"group {index}/{len(groups)} {group}{in_mode}: {_summary_line(points, self.metric)} "
                             f"({time.perf_counter() - started:.0f} s elapsed)")
            if mode is not None:
                report["measured_modes"].append(mode)
        report["wall_s"] = round(time.perf_counter() - started, 1)
        outputs.finish(report)
        return report

    def _report(self, prunable: Prunable, base: Baseline, groups: list[str], settings: dict) -> dict:
        config = self.config
        modes = [mode for mode in self.modes if mode is not None]
        return {
            "model": self.model_name, "model_fingerprint": prunable.resolved.fingerprint,
            # The trained weights the sensitivities hold for: --allocate sensitivity refuses others.
            "baseline_fingerprint": module_fingerprint(base.module), "measured_part": self.part,
            "task": self.task.name, "metric": self.metric, "backends": list(self.backends),
            "criterion": config.criterion, "sparsities": self.sparsities, "round_to": config.round_to,
            "finetune_steps": config.finetune_steps, "train_steps": config.train_steps,
            "score_inputs": config.score_inputs, "pairing": {"rounds": config.pairing.rounds,
                                                             "block_s": config.pairing.block_s},
            "baseline": {"metric": base.accuracy, "macs": base.macs, "params": base.params, "training": base.training},
            "kept_layers": self.kept, "groups": groups, "measured_groups": [],
            # "mode": the first, as a single --mode has always been reported.
            "mode": modes[0] if modes else None, "modes": modes, "measured_modes": [],
            "aa_check": "sparsity 0.0 is the unpruned model paired with a copy of itself: its ratio is an A/A check",
            **settings,
        }

    def _cuts(self, index: int, graph, group: str, score: torch.Tensor) -> GroupCuts:
        """Every sparsity of ``group``: one candidate per distinct width, cut, fine-tuned and evaluated."""
        width = len(score)
        drops = {sparsity: ratio_cut({group: score}, sparsity, self.config.round_to).get(group, [])
                 for sparsity in self.sparsities}
        assert not drops[0.0], "sparsity 0 cuts nothing: its row is the unpruned model"  # the A/A premise
        candidates: dict[int, Candidate] = {}
        for sparsity, drop in drops.items():
            keep = width - len(drop)
            if drop and keep not in candidates:
                candidates[keep] = self._cut(index, graph, group, width, keep, drop)
                # Measured from its file from now on: the module is let go, as the modes keep every group's cuts.
                candidates[keep].module = None
        return GroupCuts(index, group, width, drops, candidates)

    def _points(self, cuts: GroupCuts, base: Baseline, mode: Optional[str], count: int) -> list[Point]:
        """The group's candidates measured in one pairing per backend, in the stage of ``mode``."""
        group, width, drops, candidates = cuts.group, cuts.width, cuts.drops, cuts.candidates
        self.log(f"group {cuts.index}/{count} {group} ({width} channels): {len(candidates)} width(s), measuring on "
                 f"{', '.join(self.backends)}" + (f" in {mode}" if mode else ""))
        for candidate in candidates.values():
            candidate.reason = ""  # a failure in another mode is not this mode's
        aa: dict[str, Optional[Ratio]] = {}
        pending, paireds = self._measure(cuts.index, base.resolved, base.resolved, list(candidates.values()), {}, aa)
        by_name = {candidate.resolved.name: candidate for candidate in candidates.values()}
        first_sparsity = {width - len(drop): sparsity for sparsity, drop in reversed(drops.items())}
        self.keep_records([_labelled(record, info["role"], group, by_name, first_sparsity, width)
                           for record, info in pending])
        unpruned_ms = {b: p.entries[0].p50_ms if p.entries[0].ok else None for b, p in paireds.items()}
        points = []
        for sparsity, drop in drops.items():
            keep = width - len(drop)
            candidate = candidates.get(keep)
            if candidate is None:  # nothing cut: the unpruned model
                note = AA_NOTE if sparsity == 0.0 else \
                    f"no channel cut at --round-to {self.config.round_to}: " + AA_NOTE
                points.append(Point(group, sparsity, width, width, base.macs, base.params, self.metric, base.accuracy,
                                    0.0, unpruned_ms, dict(aa), note, mode))
                continue
            shared = first_sparsity[keep]
            note = f"the same width as sparsity {shared:g} (--round-to {self.config.round_to})" \
                if shared != sparsity else candidate.reason
            points.append(Point(group, sparsity, width, keep, candidate.macs, candidate.params, self.metric,
                                candidate.accuracy, base.accuracy - candidate.accuracy, dict(candidate.latency_ms),
                                dict(candidate.ratio_to_baseline), note, mode))
        return points

    def _cut(self, index: int, graph, group: str, width: int, keep: int, drop: list[int]) -> Candidate:
        module, history = cut(graph, {group: drop})
        self.task.finetune(module, self.config.finetune_steps)
        macs, params = macs_and_params(module, self.example_input)
        name = f"{self.model_name} [{group} {width}->{keep}]"
        resolved = self.materialize(module, f"sensitivity-{index:02d}-{keep}", name)
        candidate = Candidate(index, Proposal(group, width, keep), module, history[0], resolved, macs, params)
        candidate.accuracy = self.task.evaluate(module)
        return candidate


def _labelled(record: Record, role: str, group: str, by_name: dict[str, Candidate], first_sparsity: dict[int, float],
              width: int) -> Record:
    """The record with what it was in the analysis, under ``env.sensitivity``."""
    candidate = by_name.get(record.model) if role == "candidate" else None
    keep = candidate.proposal.keep if candidate else width
    sensitivity = {"group": group, "sparsity": first_sparsity.get(keep, 0.0) if candidate else 0.0,
                   "channels": [width, keep],
                   # The pair's reference ("current") and its copy ("baseline") are the unpruned model.
                   "role": "candidate" if candidate else "unpruned" if role == "current" else "unpruned copy (A/A)"}
    if candidate is not None:
        sensitivity.update(metric=candidate.accuracy, macs=candidate.macs, params=candidate.params)
    return record.model_copy(update={"env": {**record.env, "sensitivity": sensitivity}})


def _summary_line(points: list[Point], metric: str) -> str:
    last = points[-1]
    ratios = ", ".join(f"{backend} {ratio.ratio:.2f}x" if ratio else f"{backend} not measured"
                       for backend, ratio in last.ratio.items())
    aa = ", ".join(f"{backend} {ratio}" for backend, ratio in points[0].ratio.items() if ratio)
    return (f"at sparsity {last.sparsity:g} ({last.channels_before}->{last.channels_after} channels) {metric} "
            f"{last.value:.2%} (drop {last.drop:+.2%}), latency {ratios}; A/A {aa or 'not measured'}")

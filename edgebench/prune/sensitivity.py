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

The results go to ``outputs`` (``edgebench.prune.sensitivity_outputs``) a group at a time, so an
interrupted analysis keeps every group it measured.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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


class Outputs(Protocol):
    """Where the analysis puts what it measured (``sensitivity_outputs.SensitivityOutputs``)."""

    def start(self, report: dict) -> None: ...

    def add(self, points: list[Point]) -> None: ...

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


class SensitivityAnalysis(Pruner):
    """The pruner's machinery (baseline, model files, the paired measurement, discarding files) with
    ``run`` measuring sensitivities instead of pruning: it returns the report, not a pruned model."""

    def __init__(self, *args, sparsities: Sequence[float] = DEFAULT_SPARSITIES, groups: Sequence[str] = (),
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.sparsities = sorted(set(sparsities) | {0.0})
        self.chosen = list(groups)

    def run(self, prunable: Prunable, outputs: Outputs,  # type: ignore[override]
            settings: Optional[dict] = None) -> dict:
        """Measure every chosen group into ``outputs``; ``settings`` (target, mode, run id) go into the
        report, which is returned."""
        started = time.perf_counter()
        base = self.baseline(prunable)
        graph = self.graph(base.module, first=True)
        groups = self.chosen or in_model_order(base.module, graph.groups)
        scores = channel_scores(self.config.criterion, base.module, {g: graph.groups[g] for g in groups}, self.task,
                                self.config.score_inputs)
        report = self._report(prunable, base, groups, settings or {})
        outputs.start(report)
        for index, group in enumerate(groups, start=1):
            points = self._group(index, len(groups), graph, group, scores[group], base)
            outputs.add(points)
            report["measured_groups"].append(group)
            self.log(f"group {index}/{len(groups)} {group}: {_summary_line(points, self.metric)} "
                     f"({time.perf_counter() - started:.0f} s elapsed)")
        report["wall_s"] = round(time.perf_counter() - started, 1)
        outputs.finish(report)
        return report

    def _report(self, prunable: Prunable, base: Baseline, groups: list[str], settings: dict) -> dict:
        config = self.config
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
            "aa_check": "sparsity 0.0 is the unpruned model paired with a copy of itself: its ratio is an A/A check",
            **settings,
        }

    def _group(self, index: int, count: int, graph, group: str, score: torch.Tensor, base: Baseline) -> list[Point]:
        """Every sparsity of ``group`` (one candidate per distinct width), measured in one pairing per backend."""
        width = len(score)
        drops = {sparsity: ratio_cut({group: score}, sparsity, self.config.round_to).get(group, [])
                 for sparsity in self.sparsities}
        assert not drops[0.0], "sparsity 0 cuts nothing: its row is the unpruned model"  # the A/A premise
        candidates: dict[int, Candidate] = {}
        for sparsity, drop in drops.items():
            keep = width - len(drop)
            if drop and keep not in candidates:
                candidates[keep] = self._cut(index, graph, group, width, keep, drop)
        self.log(f"group {index}/{count} {group} ({width} channels): {len(candidates)} width(s), measuring on "
                 f"{', '.join(self.backends)}")
        aa: dict[str, Optional[Ratio]] = {}
        pending, paireds = self._measure(index, base.resolved, base.resolved, list(candidates.values()), {}, aa)
        by_name = {candidate.resolved.name: candidate for candidate in candidates.values()}
        first_sparsity = {width - len(drop): sparsity for sparsity, drop in reversed(drops.items())}
        self.keep_records([_labelled(record, info["role"], group, by_name, first_sparsity, width)
                           for record, info in pending])
        self._discard(list(candidates.values()))
        unpruned_ms = {b: p.entries[0].p50_ms if p.entries[0].ok else None for b, p in paireds.items()}
        points = []
        for sparsity, drop in drops.items():
            keep = width - len(drop)
            candidate = candidates.get(keep)
            if candidate is None:  # nothing cut: the unpruned model
                note = AA_NOTE if sparsity == 0.0 else \
                    f"no channel cut at --round-to {self.config.round_to}: " + AA_NOTE
                points.append(Point(group, sparsity, width, width, base.macs, base.params, self.metric, base.accuracy,
                                    0.0, unpruned_ms, dict(aa), note))
                continue
            shared = first_sparsity[keep]
            note = f"the same width as sparsity {shared:g} (--round-to {self.config.round_to})" \
                if shared != sparsity else candidate.reason
            points.append(Point(group, sparsity, width, keep, candidate.macs, candidate.params, self.metric,
                                candidate.accuracy, base.accuracy - candidate.accuracy, dict(candidate.latency_ms),
                                dict(candidate.ratio_to_baseline), note))
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

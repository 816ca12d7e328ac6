"""``edgebench prune --strategy static``: one cut of every channel scoring under a threshold, or of
the same share of every group's channels.

The Parsimonious Inference study of SSD back-ends pruned, permanently and at once, the kernels
active on under 5% of the inputs, then fine-tuned. Here: the channels of the baseline are scored
(``--criterion utilisation`` by default: the fraction of training inputs a channel is active on,
``edgebench.prune.importance``), every prunable group loses its channels scoring under
``--threshold`` in one cut (``threshold_cut``), the pruned model gets ``--finetune-steps``, and it
is measured against the baseline in one paired run per backend, as the greedy loop measures a
candidate of its first iteration (roles current, baseline, candidate). It then finishes as the
loop does (``--final-finetune-steps``, the final paired comparison, the same report and outputs),
so the cut is one step of ``report.json``, kept whatever it measured: the warnings say when it is
not significantly faster or under the accuracy floor. The step also records the task's metric right
after the cut, before fine-tuning (``metric_after_cut``).

``--ratio R`` replaces the threshold with a uniform cut (``ratio_cut``): every group loses its
``R`` lowest-scoring channels, as the HRank study of SSD300 pruned its backbone and extra layers.

``--residual zero-pad`` scores and cuts each residual branch alone instead of the coupled group it
adds into (``edgebench.prune.zero_pad``); the rest of that group keeps its channels.

``--regularise group-norm`` trains a copy of the baseline for ``--reg-steps`` with Torch-Pruning's
group-sparsity regulariser before it is scored and cut (``--regularise none``: the same steps
without it); the step records the training and what it did to the channels' norms
(``edgebench.prune.regularise``), and the baseline stays the reference.
"""

from __future__ import annotations

import copy
import math
import time

import torch

from edgebench.prune.baseline import Prunable
from edgebench.prune.importance import channel_scores
from edgebench.prune.loop import Baseline, Candidate, Outcome, Pruner
from edgebench.prune.proposals import Proposal
from edgebench.prune.regularise import PreCutTraining, train_before_cut
from edgebench.prune.surgery import Graph, macs_and_params
from edgebench.prune.zero_pad import cut_zero_padded, prunable_units, residual_branches

DEFAULT_THRESHOLD = 0.05
RATIO_TOLERANCE = 1e-9


def threshold_cut(scores: dict[str, torch.Tensor], threshold: float, round_to: int) -> dict[str, list[int]]:
    """For each group, the channels to remove: those scoring under ``threshold``, lowest first,
    but at least one channel stays and the kept count is rounded up to a multiple of ``round_to``
    (never above the group's width), so a few channels under the threshold may stay."""
    drops = {}
    for group_id, score in scores.items():
        width = len(score)
        under = int((score < threshold).sum())
        keep = min(width, math.ceil(max(width - under, 1) / round_to) * round_to)
        if keep < width:
            drops[group_id] = sorted(torch.argsort(score)[: width - keep].tolist())
    return drops


def ratio_cut(scores: dict[str, torch.Tensor], ratio: float, round_to: int) -> dict[str, list[int]]:
    """For each group, its ``ratio`` lowest-scoring channels (rounded down), the kept count rounded
    up to a multiple of ``round_to`` and never below one."""
    drops = {}
    for group_id, score in scores.items():
        width = len(score)
        keep = ratio_keep(width, ratio, round_to)
        if keep < width:
            drops[group_id] = sorted(torch.argsort(score)[: width - keep].tolist())
    return drops


def ratio_keep(width: int, ratio: float, round_to: int) -> int:
    """The channels of ``width`` a cut of ``ratio`` keeps: ``ratio * width`` removed (rounded down),
    the rest rounded up to a multiple of ``round_to``, at least one, at most ``width``."""
    # The tolerance keeps a product that floating point puts just under a whole count (0.29 * 100
    # is 28.999999999999996) at that count.
    removed = math.floor(ratio * width + RATIO_TOLERANCE)
    return min(width, math.ceil(max(width - removed, 1) / round_to) * round_to)


class StaticPruner(Pruner):
    """The static strategy; everything but ``run`` is the greedy loop's."""

    def run(self, prunable: Prunable) -> Outcome:
        config = self.config
        started = time.perf_counter()
        base = self.baseline(prunable)
        # A copy is trained before the cut: the baseline stays the reference it is measured against.
        graph = self.graph(copy.deepcopy(base.module) if config.regularise else base.module, first=True)
        pre_cut = self.train_before_cut(graph) if config.regularise else None
        branches = residual_branches(graph) if config.residual == "zero-pad" else {}
        if config.residual == "zero-pad":
            self.log(f"zero-pad: {len(branches)} residual branch(es) scored and cut alone"
                     + (f" ({', '.join(branches)})" if branches else "; every group is cut coupled"))
        units = prunable_units(graph, branches) if branches else graph.groups
        scores = channel_scores(config.criterion, graph.model, units, self.task, config.score_inputs)
        drops, rule, label = self.choose_cut(base, units, scores)
        if not drops:
            return self._finish(base.module, [], [], f"no channel to cut: none {rule}", started, base, {})
        module, history, paddings = cut_zero_padded(graph, branches, drops)
        widths = {unit: len(scores[unit]) for unit in drops}
        before, removed = sum(widths.values()), sum(len(drop) for drop in drops.values())
        after_cut = self.task.evaluate(module)
        before_cut = pre_cut[1] if pre_cut else base.accuracy  # the model that was cut: the trained copy, if any
        self.log(f"static cut: {removed} of {before} channels in {len(drops)} group(s), {rule}; {self.metric} "
                 f"{before_cut:.2%} -> {after_cut:.2%}; fine-tuning {config.finetune_steps} steps")
        self.task.finetune(module, config.finetune_steps)
        macs, params = macs_and_params(module, self.example_input)
        proposal = Proposal(", ".join(f"{unit} {widths[unit]}->{widths[unit] - len(drop)}"
                                      + (" (zero-padded)" if unit in branches else "")
                                      for unit, drop in drops.items()), before, before - removed)
        trained = "" if not pre_cut else f", trained {config.reg_steps} steps first" + (
            " with group-norm" if config.regularise == "group-norm" else "")
        name = f"{self.model_name} [{label}{trained}" + (", zero-padded]" if paddings else "]")
        candidate = Candidate(1, proposal, module, history, self.materialize(module, "static", name), macs, params)
        candidate.accuracy = self.task.evaluate(module)
        baseline_latency: dict[str, float] = {}
        pending, _ = self._measure(1, base.resolved, base.resolved, [candidate], baseline_latency, {})
        failure = candidate.reason  # set when a backend could not measure it
        candidate.verdict = "kept"
        candidate.reason = (f"static: every channel {rule} removed at once, then {config.finetune_steps} "
                            "fine-tuning steps" + (f"; {failure}" if failure else ""))
        self.keep_records(self._annotate(pending, [candidate], candidate))
        self._discard([candidate])
        self.log(f"static cut: {self._progress(candidate.ratio_to_baseline, baseline_latency)}, {self.metric} "
                 f"{candidate.accuracy:.2%}, MACs {macs / base.macs:.2f}x")
        step = {**candidate.step_dict(), "metric_after_cut": after_cut}
        if pre_cut:
            training, trained_metric = pre_cut
            step["pre_cut_training"] = {**training.report(drops), "metric_after_training": trained_metric}
        outcome = self._finish(module, history, [step], f"static cut of {removed} channels",
                               started, base, baseline_latency, paddings)
        if pre_cut:
            outcome.report["warnings"] += pre_cut[0].warnings(drops)
        return outcome

    def train_before_cut(self, graph: Graph) -> tuple[PreCutTraining, float]:
        """``--regularise``: the graph's model trained in place; what it did, and the metric after."""
        config = self.config
        how = (f"group-norm regulariser of strength {config.reg_strength:g}" if config.regularise == "group-norm"
               else "no regulariser (the contrast)")
        self.log(f"training before the cut: {config.reg_steps} steps, {how}")
        training = train_before_cut(graph, self.task, config.regularise, config.reg_strength, config.reg_steps)
        metric = self.task.evaluate(graph.model)
        self.log(f"trained before the cut: {self.metric} {metric:.2%}")
        return training, metric

    def choose_cut(self, base: Baseline, units: dict, scores: dict[str, torch.Tensor]
                   ) -> tuple[dict[str, list[int]], str, str]:
        """The channels to remove per unit, the rule in words (log and report) and the candidate's
        label. Strategies that allocate the cut another way override this and keep the rest."""
        config = self.config
        if config.ratio is None:
            return (threshold_cut(scores, config.threshold, config.round_to),
                    f"scored under {config.threshold:g} ({config.criterion})", f"static cut under {config.threshold:g}")
        return (ratio_cut(scores, config.ratio, config.round_to),
                f"the lowest {config.ratio:g} of each group ({config.criterion})", f"static cut of {config.ratio:g}")


"""``edgebench decompose`` from the model to the report: the baseline (trained when untrained, as
the pruner's), a rank per layer (``ranks``, each layer measured alone on the target), the
decomposed model, its accuracy before and after fine-tuning on the task, and one paired
measurement per backend of the decomposed model against the original, whose records carry
``env.decompose`` (the method and every layer's rank)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from edgebench.decompose.apply import replaced
from edgebench.decompose.layer_latency import LayerTimer
from edgebench.decompose.methods import Layers
from edgebench.decompose.ranks import LayerChoice, RankRule, plan_layer
from edgebench.decompose.reconstruction import layer_inputs
from edgebench.errors import UsageError
from edgebench.prune.baseline import Prunable, measured_part, saved_model, trained_baseline
from edgebench.prune.loop import FINAL_ROUNDS_FACTOR
from edgebench.prune.surgery import macs_and_params
from edgebench.results.record import Record
from edgebench.sweep.execute import Sweep
from edgebench.sweep.paired import Pairing, measure_paired

FINAL_STAGE = "final"


@dataclass(frozen=True)
class DecomposeConfig:
    method: str
    rule: RankRule
    error_inputs: int = 32  # training images the reconstruction error is taken over
    finetune_steps: int = 200
    train_steps: int = 200
    pairing: Pairing = field(default_factory=Pairing)


class Outcome(NamedTuple):
    model: nn.Module
    report: dict[str, Any]


class Decomposer:
    """``log`` gets progress lines, ``keep_records`` every measured record."""

    def __init__(self, task, sweep: Sweep, backends: list[str], config: DecomposeConfig, workdir: Path,
                 keep_records: Callable[[list[Record]], None], log: Callable[[str], None] = lambda line: None):
        self.task, self.sweep, self.backends, self.config = task, sweep, backends, config
        self.workdir, self.keep_records, self.log = workdir, keep_records, log
        self.example_input = task.example_input
        self.metric = getattr(task, "metric", "score")

    def run(self, prunable: Prunable, layers: Layers) -> Outcome:
        """Decompose the ``layers.chosen`` of ``prunable`` (``methods.decomposable_layers``)."""
        config, started = self.config, time.perf_counter()
        name = prunable.resolved.name
        original, training = trained_baseline(prunable.resolved, self.task, config.train_steps, self.log)
        part = measured_part(original, prunable.part)
        accuracy = self.task.evaluate(original)
        macs, params = macs_and_params(original, self.example_input)
        self.log(f"baseline: {self.metric} {accuracy:.2%}, {macs / 1e6:.1f} M MACs, {params / 1e6:.2f} M parameters")
        inputs = layer_inputs(original, layers.chosen, self._error_batch())
        skipped = [{"layer": layer, "reason": reason} for layer, reason in layers.skipped]
        skipped += [{"layer": layer, "reason": "not called by the model's forward"}
                    for layer in layers.chosen if layer not in inputs]
        timer = LayerTimer(self.sweep, self.backends, config.pairing, self.workdir, name, self.keep_records)
        modules = dict(original.named_modules())
        tried = [layer for layer in layers.chosen if layer in inputs]
        choices: list[LayerChoice] = []
        for index, layer in enumerate(tried, start=1):
            shape = "x".join(str(d) for d in inputs[layer].shape[1:])
            self.log(f"layer {index}/{len(tried)} {layer} ({config.method} SVD, input {shape}): errors on "
                     f"{len(inputs[layer])} inputs, then measuring the ranks within {config.rule.max_error:g} on "
                     f"{', '.join(self.backends)}")
            choice = plan_layer(layer, modules[layer], config.method, inputs[layer], config.rule, timer)
            choices.append(choice)
            self.log(f"  {layer}: {describe(choice)}")
        ranks = {choice.layer: choice.rank for choice in choices if choice.rank is not None}
        decomposed = replaced(original, {c.layer: c.replacement for c in choices if c.replacement is not None})
        before_finetune = self.task.evaluate(decomposed)
        warnings, tuned = [], before_finetune
        if ranks and config.finetune_steps:
            self.log(f"{len(ranks)} layer(s) decomposed: {self.metric} {accuracy:.2%} -> {before_finetune:.2%}; "
                     f"fine-tuning {config.finetune_steps} steps")
            self.task.finetune(decomposed, config.finetune_steps)
            tuned = self.task.evaluate(decomposed)
        if not ranks:
            warnings.append("no layer was decomposed: no rank was both within the error budget and measured faster")
        new_macs, new_params = macs_and_params(decomposed, self.example_input)
        sides = {"original": {"accuracy": accuracy, "macs": macs, "params": params, "training": training,
                              "latency_ms": {}},
                 "decomposed": {"accuracy_before_finetune": before_finetune, "accuracy": tuned, "macs": new_macs,
                                "params": new_params, "latency_ms": {}, "latency_ratio": {}}}
        shape = "x".join(str(d) for d in self.example_input.shape[1:])
        models = [saved_model(original, self.workdir / "original.pt", shape, name, part),
                  saved_model(decomposed, self.workdir / "decomposed.pt", shape, f"{name} [{config.method} SVD]",
                              part)]
        pairing = dataclasses.replace(config.pairing, rounds=config.pairing.rounds * FINAL_ROUNDS_FACTOR)
        self.log(f"final: the decomposed model against the original, paired, {pairing.rounds} rounds per backend")
        records = []
        for backend in self.backends:
            paired = measure_paired(self.sweep, models, backend, pairing, roles=list(sides))
            if not paired.entries[0].ok:
                raise UsageError(f"{backend} cannot measure {name}: {paired.entries[0].error}")
            ratio = paired.ratio(1, 0)
            sides["original"]["latency_ms"][backend] = paired.entries[0].p50_ms
            sides["decomposed"]["latency_ms"][backend] = paired.entries[1].p50_ms if paired.entries[1].ok else None
            sides["decomposed"]["latency_ratio"][backend] = ratio.as_dict() if ratio else None
            if ranks and (ratio is None or not ratio.faster):
                warnings.append(f"the decomposed model is not significantly faster than the original on {backend}: "
                                f"{ratio if ratio else paired.entries[1].error}")
            for entry, role in zip(paired.entries, sides):
                label = {"stage": FINAL_STAGE, "role": role, "method": config.method, "ranks": ranks,
                         "max_error": config.rule.max_error, "metric": self.metric,
                         "accuracy": sides[role]["accuracy"], "macs": sides[role]["macs"],
                         "params": sides[role]["params"]}
                records.append(entry.record.model_copy(update={"env": {**entry.record.env, "decompose": label}}))
        self.keep_records(records)
        report = {
            "model": name, "measured_part": part, "task": self.task.name, "metric": self.metric,
            "method": config.method, **dataclasses.asdict(config.rule), "error_inputs": config.error_inputs,
            "finetune_steps": config.finetune_steps, "pairing": dataclasses.asdict(config.pairing),
            "backends": list(self.backends), "ranks": ranks, "layers": [choice.as_dict() for choice in choices],
            "skipped": skipped, **sides, "warnings": warnings, "wall_s": round(time.perf_counter() - started, 1),
        }
        return Outcome(decomposed, report)

    def _error_batch(self) -> torch.Tensor:
        """Training images for the reconstruction errors; the example input when the task has none."""
        if callable(getattr(self.task, "sample_batch", None)):
            return self.task.sample_batch(self.config.error_inputs)[0]
        return self.example_input


def describe(choice: LayerChoice) -> str:
    """One line for the log: the rank kept, or why the layer stays whole."""
    chosen = choice.chosen
    if chosen is None:
        return f"left whole: {choice.reason}"
    ratios = ", ".join(f"{backend} {ratio}" for backend, ratio in chosen.ratios.items())
    return (f"rank {chosen.rank} of {choice.full_rank}, error {chosen.error:.3g}, MACs {chosen.macs / choice.macs:.2f}x, "
            f"latency over the layer's {ratios}")

"""The latency model learned on the target (``edgebench.prune.latency_model``), or read from the
cache (``edgebench.prune.latency_cache``) when this target, backend and model were measured before.

Each probe is the whole model with one group cut to one of its ``probe_widths``; the probes
alternate with the full model in paired worker runs of ``PROBES_PER_RUN`` at a time, per backend
(the full model first: every ratio is to it, measured in the same run). Then ``HELD_OUT`` random
configurations, every group cut to a random aligned width the model covers (where the model's
errors add up), are measured the same way and compared with what the model predicts for them: the
model's error on models it was not fitted to, kept with the model. Every record goes to the run, labelled ``env.prune.stage`` "latency
model"; the probes' files and exports are deleted as soon as they are measured.

That is the ``groups`` model; given the model's layer calls (``LayerFit``), the probe learns the
``layers`` table instead (``edgebench.prune.latency_layers``), held out and cached the same way.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from edgebench.errors import UsageError
from edgebench.models.artifacts import forget_exports
from edgebench.models.resolve import ResolvedModel
from edgebench.prune import latency_cache
from edgebench.prune.latency_kinds import LatencyPredictor, model_from_dict
from edgebench.prune.latency_layers import LayerFit
from edgebench.prune.latency_model import GroupCurve, LatencyModel, Point, probe_widths
from edgebench.results.record import Record
from edgebench.sweep.execute import Sweep
from edgebench.sweep.paired import Pairing, PairedMeasurement, measure_paired

# Models per paired run besides the full one: enough to share a worker's start, few enough that
# a round (every model one block) stays short against drift.
PROBES_PER_RUN = 12
HELD_OUT = 2
HELD_OUT_SEED = 0
STAGE = "latency model"

#: Builds the model with each named group cut to its width, saved for the worker.
BuildModel = Callable[[Mapping[str, int]], ResolvedModel]


@dataclass(frozen=True)
class Learned:
    """One backend's model, its error on held-out configurations, and where it came from."""

    model: LatencyPredictor
    held_out: list[dict[str, Any]]  # {"widths", "predicted", "measured", "ci95"}
    cached: bool
    path: str
    seconds: float  # spent measuring it, when it was measured

    def report(self) -> dict[str, Any]:
        errors = [abs(item["measured"] / item["predicted"] - 1) for item in self.held_out]
        return {"cache": "hit" if self.cached else "measured", "path": self.path, "seconds": self.seconds,
                "baseline_ms": self.model.baseline_ms, **self.model.summary(), "held_out": self.held_out,
                "held_out_mean_abs_error": sum(errors) / len(errors) if errors else None}


class LatencyProbe:
    """Learns (or loads) one latency model per backend for a model and its groups."""

    def __init__(self, sweep: Sweep, backends: list[str], pairing: Pairing, round_to: int,
                 keep_records: Callable[[list[Record]], None], log: Callable[[str], None]):
        self.sweep, self.backends, self.pairing, self.round_to = sweep, backends, pairing, round_to
        self.keep_records, self.log = keep_records, log

    def learn(self, baseline: ResolvedModel, widths: Mapping[str, int], build: BuildModel,
              keys: Mapping[str, dict[str, Any]], layers: Optional[LayerFit] = None) -> dict[str, Learned]:
        """Per backend, its model for the groups of ``widths`` (full widths), keyed by ``keys``:
        with ``layers``, the per-layer table, else the group curves."""
        learned: dict[str, Learned] = {}
        for backend in self.backends:
            entry = latency_cache.load(keys[backend])
            if entry is not None:
                learned[backend] = Learned(model_from_dict(entry["model"]), entry["held_out"], True,
                                           str(latency_cache.cache_path(keys[backend])), entry["seconds"])
                self.log(f"latency model ({backend}): from the cache {learned[backend].path}")
        missing = [backend for backend in self.backends if backend not in learned]
        if not missing:
            return learned
        started = time.perf_counter()
        models = (layers.fit(self.measure, baseline, widths, build, missing, self.log) if layers is not None
                  else self._fit_groups(baseline, widths, build, missing))
        held_out = self._held_out(baseline, models, widths, build)
        seconds = round(time.perf_counter() - started, 1)
        for backend in missing:
            path = latency_cache.store(keys[backend], {"model": models[backend].as_dict(),
                                                        "held_out": held_out[backend], "seconds": seconds})
            learned[backend] = Learned(models[backend], held_out[backend], False, str(path), seconds)
            errors = ", ".join(f"{item['predicted']:.3f} -> {item['measured']:.3f}" for item in held_out[backend])
            self.log(f"latency model ({backend}, {models[backend].kind}): learned in {seconds:g} s; held-out "
                     f"configurations predicted -> measured: {errors or 'none'}; cached in {path}")
        return learned

    def _fit_groups(self, baseline: ResolvedModel, widths: Mapping[str, int], build: BuildModel,
                    missing: list[str]) -> dict[str, LatencyModel]:
        """Every group's curve, from the whole model with that group alone cut."""
        probes = [(group, width) for group, full in widths.items() for width in probe_widths(full, self.round_to)]
        self.log(f"latency model ({', '.join(missing)}): measuring {len(probes)} probes of {len(widths)} groups, "
                 f"{PROBES_PER_RUN} per paired run")
        points: dict[str, dict[str, list[Point]]] = {backend: {group: [] for group in widths} for backend in missing}
        baseline_ms: dict[str, float] = {}
        for first in range(0, len(probes), PROBES_PER_RUN):
            batch = probes[first:first + PROBES_PER_RUN]
            paireds = self.measure_widths(baseline, [{group: width} for group, width in batch], build, missing)
            for backend, paired in paireds.items():
                baseline_ms.setdefault(backend, paired.entries[0].p50_ms)
                for index, (group, width) in enumerate(batch, start=1):
                    ratio = paired.ratio(index, 0)
                    if ratio is None:
                        self.log(f"latency model ({backend}): {group} at {width} not measured: "
                                 f"{paired.entries[index].error}")
                    else:
                        points[backend][group].append(Point(width, ratio.ratio, ratio.low, ratio.high))
        return {backend: LatencyModel(backend, baseline_ms[backend],
                                      {group: GroupCurve.of(widths[group], points[backend][group]) for group in widths})
                for backend in missing}

    def _held_out(self, baseline: ResolvedModel, models: Mapping[str, LatencyPredictor], widths: Mapping[str, int],
                  build: BuildModel) -> dict[str, list[dict[str, Any]]]:
        """``HELD_OUT`` seeded random configurations, predicted by every backend's model and measured."""
        # Widths every backend's model covers: from the narrowest all of them measured.
        ranges = {group: (max(model.narrowest(group, full) for model in models.values()), full)
                  for group, full in sorted(widths.items())}
        choices = {group: range(low, full, self.round_to) for group, (low, full) in ranges.items() if low < full}
        chooser = random.Random(HELD_OUT_SEED)
        configurations = [{group: chooser.choice(widths) for group, widths in choices.items()}
                          for _ in range(HELD_OUT if choices else 0)]
        results: dict[str, list[dict[str, Any]]] = {backend: [] for backend in models}
        if not configurations:
            return results
        for backend, paired in self.measure_widths(baseline, configurations, build, list(models)).items():
            for index, configuration in enumerate(configurations, start=1):
                ratio = paired.ratio(index, 0)
                if ratio is not None:
                    results[backend].append({"widths": configuration,
                                             "predicted": models[backend].predict(configuration),
                                             "measured": ratio.ratio, "ci95": [ratio.low, ratio.high]})
        return results

    def measure_widths(self, baseline: ResolvedModel, configurations: list[Mapping[str, int]], build: BuildModel,
                       backends: list[str], pairing: Optional[Pairing] = None) -> dict[str, PairedMeasurement]:
        """The configurations built and measured against the full model, one paired run per backend."""
        return self.measure(baseline, [functools.partial(build, configuration) for configuration in configurations],
                            [{"widths": dict(configuration)} for configuration in configurations], backends, pairing)

    def measure(self, baseline: ResolvedModel, builders: Sequence[Callable[[], ResolvedModel]],
                labels: Sequence[Mapping[str, Any]], backends: list[str],
                pairing: Optional[Pairing] = None) -> dict[str, PairedMeasurement]:
        """The models ``builders`` make, measured against the full model in one paired run per
        backend (at ``pairing``, else the probe's); each record labelled with its ``labels`` entry;
        the models' files and exports deleted afterwards."""
        built: list[ResolvedModel] = []
        try:
            for builder in builders:
                built.append(builder())
            paireds = {}
            for backend in backends:
                paired = measure_paired(self.sweep, [baseline] + built, backend, pairing or self.pairing,
                                        roles=["baseline"] + ["latency probe"] * len(built))
                if not paired.entries[0].ok:
                    raise UsageError(f"{backend} cannot measure the model: {paired.entries[0].error}")
                self.keep_records([entry.record.model_copy(update={"env": {**entry.record.env, "prune": {
                    "role": entry.record.env["pairing"]["role"], "stage": STAGE, **label}}})
                    for entry, label in zip(paired.entries, [{}, *labels])])
                paireds[backend] = paired
            return paireds
        finally:
            for model in built:  # throwaway files, and their exports in the cache
                forget_exports(model, 1)
                Path(model.recipe["path"]).unlink(missing_ok=True)

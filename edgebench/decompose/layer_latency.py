"""A layer and its decompositions timed alone on the target: each saved as a model of its own at
the input the layer sees in the network (batch 1), all of them alternating in one paired worker
run per backend, the original first. The records go to the run, labelled under ``env.decompose``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from edgebench.errors import UsageError
from edgebench.models.artifacts import forget_exports
from edgebench.prune.baseline import saved_model
from edgebench.results.record import Record
from edgebench.sweep.execute import Sweep
from edgebench.sweep.paired import Pairing, Ratio, measure_paired


class LayerTimer:
    """``ranks.MeasureLayer`` on a real target."""

    def __init__(self, sweep: Sweep, backends: list[str], pairing: Pairing, workdir: Path, model_name: str,
                 keep_records: Callable[[list[Record]], None]):
        self.sweep, self.backends, self.pairing = sweep, backends, pairing
        self.workdir, self.model_name, self.keep_records = workdir, model_name, keep_records
        self._count = 0

    def __call__(self, layer: str, modules: list[nn.Module], example: torch.Tensor,
                 labels: list[dict]) -> dict[str, list[Optional[Ratio]]]:
        self._count += 1
        shape = "x".join(str(d) for d in example.shape[1:])
        resolved = []
        try:
            for index, (module, label) in enumerate(zip(modules, labels)):
                variant = f"rank {label['rank']}" if "rank" in label else "original"
                path = self.workdir / f"layer-{self._count:03d}-{index}.pt"
                resolved.append(saved_model(module, path, shape, f"{self.model_name} {layer} [{variant}]", None))
            ratios, records = {}, []
            for backend in self.backends:
                paired = measure_paired(self.sweep, resolved, backend, self.pairing,
                                        roles=[label["role"] for label in labels])
                if not paired.entries[0].ok:
                    raise UsageError(f"{backend} cannot measure the layer {layer}: {paired.entries[0].error}")
                ratios[backend] = [paired.ratio(index, 0) for index in range(1, len(resolved))]
                records += [entry.record.model_copy(update={"env": {**entry.record.env, "decompose": label}})
                            for entry, label in zip(paired.entries, labels)]
            self.keep_records(records)
            return ratios
        finally:
            for model in resolved:  # throwaway files, and their exports in the cache
                forget_exports(model, 1)
                Path(model.recipe["path"]).unlink(missing_ok=True)

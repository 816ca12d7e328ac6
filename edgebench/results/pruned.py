"""The table of pruned variants: each prune run's final model against its own baseline.

``edgebench prune`` ends with one paired measurement of the baseline and the final model per
backend; those two records carry ``env.prune`` with ``stage: "final"``, the model's figures on
paper (``model``: MACs, parameters, weights and ONNX sizes of the measured part) and the task's
metrics (``metrics``, the headline under ``metric``). This view joins the two, so the
per-network table (MACs, parameters, sizes, metric and latency before and after, per backend and
device) is read from the store, never assembled by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Optional

from edgebench.results.compare import Pair, pair
from edgebench.results.key import key_of
from edgebench.results.record import Record

FINAL_STAGE = "final"
# The key of the final pair, less the model: baseline and final are two models measured together.
_PAIR_FIELDS = ("run_id", "target", "mode", "backend", "device", "precision", "batch", "machine_id")


@dataclass(frozen=True)
class PrunedVariant:
    """One prune run's final model against its baseline, on one backend and device."""

    pair: Pair  # latency: speedup = baseline p50 / final p50, with its interval

    @property
    def baseline(self) -> Record:
        return self.pair.baseline

    @property
    def final(self) -> Record:
        return self.pair.contender

    def figures(self, role: str) -> dict[str, Any]:
        """``env.prune`` of the baseline or the final record."""
        return (self.baseline if role == "baseline" else self.final).env["prune"]

    def row(self) -> dict[str, Any]:
        """The flat row every format prints: each figure before and after, and the change."""
        base, final = self.figures("baseline"), self.figures("final")
        metric = base.get("metric") or final.get("metric") or "metric"
        row: dict[str, Any] = {
            "model": self.baseline.model, "run": self.baseline.run_id, "target": self.baseline.target,
            "mode": self.baseline.mode, "backend": self.baseline.backend, "device": self.baseline.device,
            "batch": self.baseline.batch, "metric": metric,
            f"{metric} before": base.get("metrics", {}).get(metric),
            f"{metric} after": final.get("metrics", {}).get(metric),
        }
        for name in ("macs", "params", "state_dict_bytes", "onnx_bytes"):
            before, after = base.get("model", {}).get(name), final.get("model", {}).get(name)
            row.update({f"{name} before": before, f"{name} after": after, f"{name} change %": change(before, after)})
        row.update({
            "p50 ms before": self.baseline.latency_ms.p50, "p50 ms after": self.final.latency_ms.p50,
            "latency change %": change(self.baseline.latency_ms.p50, self.final.latency_ms.p50),
            "speedup": self.pair.speedup, "speedup ci95 low": self.pair.speedup_ci[0],
            "speedup ci95 high": self.pair.speedup_ci[1],
        })
        return row


def pruned_variants(records: Iterable[Record]) -> list[PrunedVariant]:
    """Every final pair among ``records`` whose two sides were measured, in store order."""
    sides: dict[tuple, dict[str, Record]] = {}
    for record in records:
        prune = record.env.get("prune") or {}
        if prune.get("stage") != FINAL_STAGE or record.status != "ok":
            continue
        sides.setdefault(key_of(record, _PAIR_FIELDS), {})[prune.get("role")] = record
    return [PrunedVariant(pair(found["baseline"], found["final"], dict(zip(_PAIR_FIELDS, key))))
            for key, found in sides.items() if "baseline" in found and "final" in found]


def change(before: Optional[float], after: Optional[float]) -> Optional[float]:
    """``after`` against ``before`` in percent (negative: smaller); None when either is unknown."""
    if before is None or after is None or before == 0:
        return None
    return (after / before - 1.0) * 100.0

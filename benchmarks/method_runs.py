"""What the scripts comparing pruning methods share (allocate_vs_uniform.py, search.py,
method_comparison.py): one ``edgebench`` command run for its ``--json`` report, allocate's budget
from the uniform cut, and which model of a search's front is compared. Imported by the scripts
beside it (``python benchmarks/X.py``), as ``cli_run``."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

from edgebench.errors import UsageError


def report_of(command: str, options: list[str], out: Path) -> dict[str, Any]:
    """``edgebench COMMAND OPTIONS --out OUT --json``, echoed on stderr: ``{"report": what it
    printed, "wall_s": process start to exit}``. CalledProcessError when it fails."""
    argv = [sys.executable, "-m", "edgebench", command, *options, "--out", str(out), "--json"]
    print("$", shlex.join(argv), file=sys.stderr, flush=True)
    started = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=True)
    return {"report": json.loads(proc.stdout), "wall_s": round(time.perf_counter() - started, 1)}


def allocate_budgets(uniform: dict[str, Any], backends: list[str], factor: float) -> dict[str, float]:
    """allocate's budget on each backend: ``factor`` times the uniform cut's final latency ratio to
    the baseline there (at 1, the two compare at equal latency on every backend), at most 1."""
    ratios = uniform["final"]["latency_ratio"]
    unmeasured = [backend for backend in backends if not ratios.get(backend)]
    if unmeasured:
        raise UsageError(f"the uniform cut was not measured on {', '.join(unmeasured)}: no budget for allocate")
    return {backend: round(min(factor * ratios[backend]["ratio"], 1.0), 4) for backend in backends}


def budget_options(budgets: dict[str, float]) -> list[str]:
    """``edgebench prune --strategy allocate``'s options for ``budgets`` (each backend's)."""
    return ["--backend-budget", ",".join(f"{backend}={budget:g}" for backend, budget in budgets.items())]


def budgets_text(budgets: dict[str, float]) -> str:
    return ", ".join(f"{backend} {budget:g}" for backend, budget in budgets.items())


def fastest_at(report: dict[str, Any], floor: float,
               reference: Optional[dict[str, float]] = None) -> Optional[dict[str, Any]]:
    """The fine-tuned front member of a search's ``report.json`` with the lowest measured latency
    at or above ``floor`` (the task's metric); None when no member reaches it. A member's latency is
    its worst backend's ratio to the baseline, or, given ``reference`` (a ratio to the baseline per
    backend: the uniform cut's), its worst backend's ratio over the reference's, so that a slow
    backend's ratios do not decide alone what is compared against the reference. A member some
    backend could not measure is left out."""
    backends = report["backends"]
    scale = reference or {backend: 1.0 for backend in backends}
    eligible = [tuned for tuned in report["final_front"]
                if tuned["accuracy"] >= floor and all(tuned["latency_ratio"].get(b) for b in backends)]
    if not eligible:
        return None
    return min(eligible, key=lambda tuned: max(tuned["latency_ratio"][b]["ratio"] / scale[b] for b in backends))

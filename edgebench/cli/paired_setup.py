"""What the commands that measure models paired against each other (prune, sensitivity, search,
decompose, bake) set up alike: the worker settings, the progress log and the candidates' folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Optional

from rich.console import Console

from edgebench.results.record import Settings
from edgebench.sweep.paired import Pairing

# Seconds a paired worker gets beyond its blocks: importing, loading every model, exporting.
PAIRED_TIMEOUT_S = 600.0


def paired_settings(pairing: Pairing, threads: Optional[int]) -> Settings:
    """One worker process that times blocks itself: no time targets, no repeats."""
    return Settings(min_time_s=0.0, max_time_s=0.0, min_iterations=1, warmup_s=pairing.warmup_s, target_ci=0.0,
                    timeout_s=PAIRED_TIMEOUT_S, threads=threads, processes=1)


def stderr_log() -> Callable[[str], None]:
    """Progress lines on stderr, so stdout keeps only the result (``--json``)."""
    err = Console(stderr=True)

    def log(line: str) -> None:
        err.print(line, highlight=False)

    return log


def candidates_dir(out: Path) -> Path:
    """``out`` and its ``.candidates`` folder, where candidate models are written for the worker."""
    out.mkdir(parents=True, exist_ok=True)
    workdir = out / ".candidates"
    workdir.mkdir(exist_ok=True)
    return workdir

"""The ``edgebench`` entry point: registers every sub-command on ``app``, then runs it."""

from __future__ import annotations

# Each sub-command module registers itself on ``app`` when imported.
from edgebench.cli import (  # noqa: F401
    bake, compare, decompose, lab, prune, regress, report, results, run, search, sensitivity, targets, tasks,
    tegrastats,
)
from edgebench.cli.app import run_app


def main() -> None:
    run_app()

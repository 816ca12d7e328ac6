"""PYTHONPATH for a subprocess (the CLI, its workers) that imports tests/support modules: the
support folder first, then whatever PYTHONPATH already says, so a checkout run with
PYTHONPATH=<checkout> keeps importing its own edgebench."""

import os
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent


def with_support() -> str:
    return os.pathsep.join(filter(None, [str(SUPPORT), os.environ.get("PYTHONPATH")]))

"""The one way the benchmark scripts run an ``edgebench`` command: echoed, then run to completion
(a failure ends the benchmark). Imported by the scripts beside it (``python benchmarks/X.py``)."""

from __future__ import annotations

import subprocess
import sys


def edgebench(*args: str) -> None:
    command = [sys.executable, "-m", "edgebench", *args]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)

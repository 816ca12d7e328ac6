"""The one way the pruner's benchmark scripts leave their table behind: ``NAME.md`` for the docs to
quote and ``NAME.json`` with every figure and setting behind it, plus the few header facts that make
a table comparable (date, machine, library versions, load average). Imported by the scripts beside
it (``python benchmarks/X.py``), as ``cli_run``."""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import edgebench
from edgebench.board.machine import cpu_model, package_versions
from edgebench.cli.render import markdown_cell
from edgebench.errors import UsageError
from edgebench.models.artifacts import atomic_target


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table; every cell escaped (a pipe inside would end it)."""
    lines = ["| " + " | ".join(markdown_cell(cell) for cell in header) + " |",
             "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(markdown_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def ratio_text(ratio: Optional[dict]) -> str:
    """A paired ratio as ``Ratio.as_dict`` stores it: ``0.414 [0.405, 0.422]``."""
    if not ratio:
        return "not measured"
    low, high = ratio["ci95"]
    return f"{ratio['ratio']:.3f} [{low:.3f}, {high:.3f}]"


def load_average() -> Optional[float]:
    """The 1-minute load average, where the system has one: a busy machine moves paired ratios."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def environment() -> dict[str, Any]:
    """What a table's header says it was measured with."""
    versions = {"python": platform.python_version(), "edgebench": edgebench.__version__, **package_versions()}
    try:
        versions["torch-pruning"] = metadata.version("torch-pruning")
    except metadata.PackageNotFoundError:
        pass
    return {"date": datetime.date.today().isoformat(), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "versions": versions}


def environment_line(found: dict[str, Any]) -> str:
    """``environment()`` as one line of a table's header."""
    versions = ", ".join(f"{name} {version}" for name, version in found["versions"].items())
    return f"Measured {found['date']} on {found['cpu']} ({found['cpu_count']} CPUs); {versions}."


def write_table(out: Path, name: str, markdown: str, data: dict[str, Any]) -> Path:
    """``out/NAME.md`` and ``out/NAME.json``, each replaced whole, so a reader (or a run that is
    stopped) never leaves half a table; returns the Markdown file's path."""
    out.mkdir(parents=True, exist_ok=True)
    with atomic_target(out / f"{name}.json") as temp_path:
        temp_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    with atomic_target(out / f"{name}.md") as temp_path:
        temp_path.write_text(markdown, encoding="utf-8")
    return out / f"{name}.md"


def measure_and_write(script: str, results: dict[str, Any], measure: Callable[[], None],
                      write: Callable[[dict[str, Any]], Path], markdown: Callable[[dict[str, Any]], str]) -> None:
    """Run ``measure`` (it fills ``results``, whose ``load_average`` it started), then always write
    the table: Ctrl-C keeps what was measured and exits 130, a UsageError is one line and exit 1."""
    started = time.monotonic()
    try:
        measure()
    except KeyboardInterrupt:
        results["interrupted"] = True
        print("interrupted: the tables cover what was measured", file=sys.stderr, flush=True)
    except UsageError as exc:
        results["error"] = str(exc)
    finally:
        results["load_average"]["end"] = load_average()
        results["wall_s"] = round(time.monotonic() - started, 1)
        table = write(results)
    print(markdown(results))
    print(f"written: {table} and {table.with_suffix('.json')}")
    if results.get("error"):
        sys.exit(f"{script}: error: {results['error']}")
    if results["interrupted"]:
        sys.exit(130)

"""Options shared by several sub-commands."""

from __future__ import annotations

from pathlib import Path

import typer

DEFAULT_STORE = Path("results") / "edgebench.db"

StoreOption = typer.Option(
    DEFAULT_STORE,
    "--store",
    help="Results store: a SQLite file path (or sqlite:///path).",
    show_default=True,
)

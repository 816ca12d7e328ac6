"""Options shared by several sub-commands."""

from __future__ import annotations

import typer

from edgebench.results.store import DEFAULT_STORE

# Text, not Path: a Path would fold the "//" of a sqlite:/// URL.
StoreOption = typer.Option(
    str(DEFAULT_STORE),
    "--store",
    help="Results store: a SQLite file path (or sqlite:///path).",
    show_default=True,
)

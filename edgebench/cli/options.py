"""Options shared by several sub-commands."""

from __future__ import annotations

import typer

from edgebench.results.location import DEFAULT_STORE, STORE_ENV

# Text, not Path: a Path would fold the "//" of a sqlite:/// URL.
StoreOption = typer.Option(
    str(DEFAULT_STORE),
    "--store",
    envvar=STORE_ENV,
    show_envvar=True,
    help="Results store: a SQLite file path (or sqlite:///path), or a PostgreSQL database "
    "(postgresql://user@host:port/database) shared by a lab.",
    show_default=True,
)

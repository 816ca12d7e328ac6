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

# --machine and --board: read into a ``results.select.Scope`` by each command, applied to the
# records before any selector.
MachineOption = typer.Option(
    None,
    "--machine",
    metavar="ID-PREFIX",
    help="Only records measured on this machine: its id or a prefix of it (`results list` shows 8 digits).",
)
BoardOption = typer.Option(
    None,
    "--board",
    metavar="NAME",
    help="Only records measured on this board: the labgrid place the run reserved, else the measured "
    "machine's host name.",
)

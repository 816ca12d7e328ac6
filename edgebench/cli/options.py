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

# The paired measurement and the baseline's training, shared by the commands that change a model
# and let the target judge it (prune, decompose).
TrainStepsOption = typer.Option(200, "--train-steps", min=1, help="Training steps for an untrained baseline "
                                "(cached by model and task, shared by edgebench prune and decompose).")
BlockTimeOption = typer.Option(0.1, "--block-time", min=0.005, help="Seconds of each timed block.")
ThreadsOption = typer.Option(None, "--threads", min=1, help="Intra-op threads for every backend.")
RoundsOption = typer.Option(10, "--rounds", min=2, help="Paired rounds: each model runs one block per round.")
DeviceOption = typer.Option(None, "--device", help="cpu, gpu, dla0 or dla1, as the target lists.")

"""``edgebench lab``: the places of a labgrid lab, and the janitor that releases places whose
edgebench holder is gone (docs/remote.md, "Boards in a labgrid lab")."""

from __future__ import annotations

import json
from typing import List, Optional

import typer
from rich.table import Table
from rich.text import Text

from edgebench.cli import render
from edgebench.cli.app import app

LAB_HELP = "The places of a labgrid lab, and releasing places whose edgebench holder is gone."

lab_app = typer.Typer(help=LAB_HELP, no_args_is_help=True)
app.add_typer(lab_app, name="lab", help=LAB_HELP)

CoordinatorOption = typer.Option(None, "--coordinator", metavar="HOST:PORT",
                                 help="The labgrid coordinator (default: LG_COORDINATOR, else 127.0.0.1:20408).")


@lab_app.command("places")
def places_command(
    coordinator: Optional[str] = CoordinatorOption,
    as_json: bool = typer.Option(False, "--json", help="Print the places as a JSON list."),
) -> None:
    """List the places, their tags, who holds each and since when."""
    from edgebench.lab.client import connect, coordinator_address
    from edgebench.lab.holder import Holder

    with connect(coordinator_address(coordinator)) as client:
        places = client.places()
    if as_json:
        typer.echo(json.dumps([{"name": place.name, "tags": place.tags, "acquired": place.acquired,
                                "comment": place.comment, "reservation": place.reservation} for place in places],
                              indent=2))
        return
    table = Table(title=f"Places at {client.address}")
    for column in ("place", "tags", "locked by", "holder"):
        table.add_column(column)
    for place in places:
        holder = Holder.from_comment(place.comment)
        table.add_row(Text(place.name), Text(", ".join(f"{k}={v}" for k, v in sorted(place.tags.items()))),
                      Text(place.acquired or "free"),
                      Text(holder.describe() if holder and place.acquired else place.comment))
    render.stdout_console().print(table)


@lab_app.command("janitor")
def janitor_command(
    coordinator: Optional[str] = CoordinatorOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be released; release nothing."),
    force_host: List[str] = typer.Option([], "--force-host", metavar="HOST",
                                         help="Treat every edgebench holder on HOST as gone (a runner that no longer "
                                              "exists). Repeatable."),
    as_json: bool = typer.Option(False, "--json", help="Print the verdicts as a JSON list."),
) -> None:
    """Release places locked by an edgebench run that is gone (killed outright, its host lost). A holder on this
    host is judged by its pid; a holder on another host is listed and left, unless --force-host names that host.
    Places not locked by edgebench are never touched."""
    from edgebench.lab.client import connect, coordinator_address
    from edgebench.lab.janitor import RELEASE, sweep

    with connect(coordinator_address(coordinator)) as client:
        verdicts = sweep(client, force_host, dry_run)
    if as_json:
        typer.echo(json.dumps([{"place": verdict.place, "action": verdict.action,
                                "released": verdict.action == RELEASE and not dry_run,
                                "reason": verdict.reason} for verdict in verdicts], indent=2))
        return
    if not verdicts:
        typer.echo(f"no locked places at {client.address}")
    for verdict in verdicts:
        action = ("would release" if dry_run else "released") if verdict.action == RELEASE else "left"
        typer.echo(f"{action} {verdict.place}: {verdict.reason}")

"""``edgebench tasks``: the tasks ``edgebench prune --task`` accepts, with their kind, metric and
options (with defaults), so a user can find them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from rich.text import Text

from edgebench.cli import render
from edgebench.cli.app import app

if TYPE_CHECKING:
    from edgebench.prune.tasks import TaskListing


@app.command("tasks")
def tasks_command(
    json_output: bool = typer.Option(False, "--json", help="Print the tasks as a JSON list."),
) -> None:
    """List the built-in tasks (and those packages register): kind, metric and options."""
    from edgebench.prune.tasks import TASK_FORMS, task_listings  # imports torch: only when listing

    listings = task_listings()
    if json_output:
        typer.echo(json.dumps([listing._asdict() for listing in listings], indent=2))
        return
    console = render.stdout_console()
    console.print(_table(listings))
    console.print(Text(f"use --task {TASK_FORMS}; e.g. --task 'digit-detection?size=320&seed=1'; "
                       "docs/tasks.md describes each task"))


def _table(listings: list[TaskListing]) -> Table:
    table = Table(title="Tasks (edgebench prune --task)")
    for column in ("name", "kind", "metric", "options (defaults)", "description"):
        table.add_column(column)
    for listing in listings:
        options = "not declared" if listing.options is None else \
            ", ".join(f"{key}={value}" for key, value in listing.options.items())
        table.add_row(listing.name, listing.kind or "not declared", listing.metric or "not declared",
                      Text(options), Text(listing.description))
    return table

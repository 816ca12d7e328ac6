"""``edgebench targets``: every target, whether it can run here and, when not, why."""

from __future__ import annotations

import json

import typer
from rich.table import Table
from rich.text import Text

from edgebench.cli import render
from edgebench.cli.app import app
from edgebench.board.runners import is_installed, runner_class, runner_names
from edgebench.errors import UsageError
from edgebench.targets import LOCAL, Target, all_targets, resolve_target


@app.command("targets")
def targets_command(
    json_output: bool = typer.Option(False, "--json", help="Print the targets as a JSON list."),
) -> None:
    """List the built-in targets and whether each can run here."""
    targets = all_targets()
    local = _local_entry()
    if json_output:
        typer.echo(json.dumps([local, *(_as_json(target) for target in targets)], indent=2))
        return
    console = render.stdout_console()
    console.print(_table(targets))
    console.print(Text(f"local: {local['resolves_to'] or local['reason']}"))
    for name, reason in _missing_backends(sorted({b for t in targets for b in t.definition.backends})).items():
        console.print(Text(f"backend {name}: {reason}"))


def _local_entry() -> dict:
    """``local`` is whichever definition this machine is detected as."""
    try:
        target = resolve_target(LOCAL)
    except UsageError as exc:
        return {"name": LOCAL, "kind": None, "available": False, "reason": str(exc), "resolves_to": None,
                "modes": [], "devices": [], "backends": []}
    return {**_as_json(target), "name": LOCAL, "resolves_to": target.name}


def _as_json(target: Target) -> dict:
    definition = target.definition
    return {
        "name": definition.name,
        "kind": definition.kind,
        "available": target.available,
        "reason": target.reason,
        "modes": definition.mode_names,
        "devices": definition.devices,
        "backends": definition.backends,
        "backends_installed": [name for name in definition.backends if name in runner_names() and is_installed(name)],
        "backends_unavailable": _missing_backends(definition.backends),
        "power_sources": definition.power_sources,
        "description": definition.description,
    }


def _missing_backends(backends: list[str]) -> dict[str, str]:
    """Why each backend the target lists cannot run on this machine."""
    reasons = {}
    for name in backends:
        if name not in runner_names():
            reasons[name] = "no runner of that name is registered"
        elif not is_installed(name):
            reasons[name] = f"the Python package {runner_class(name).requires!r} is not installed here"
    return reasons


def _table(targets: list[Target]) -> Table:
    table = Table(title="Targets ('local' is this machine, detected)")
    for column in ("name", "kind", "here", "modes", "devices", "backends", "why not"):
        table.add_column(column)
    for target in targets:
        definition = target.definition
        table.add_row(
            definition.name, definition.kind,
            Text("yes", style="green") if target.available else Text("no", style="red"),
            ", ".join(definition.mode_names), ", ".join(definition.devices), ", ".join(definition.backends),
            Text(target.reason or ""),
        )
    return table

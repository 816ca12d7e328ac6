"""Entry point: builds the Typer application and turns expected failures into one line."""

from __future__ import annotations

import sys

import typer

from edgebench.errors import UsageError

app = typer.Typer(
    name="edgebench",
    help="Benchmark and profile neural networks on embedded targets: the board is the judge.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    # Sub-commands register themselves on import.
    from edgebench.cli import bake, compare, prune, regress, report, results, run, targets, tegrastats  # noqa: F401

    try:
        # Standalone mode: Typer reports its own usage errors (exit 2) and exits with the code.
        app()
    except UsageError as exc:
        print(f"edgebench: error: {exc}", file=sys.stderr)
        sys.exit(2)

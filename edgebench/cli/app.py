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
    from edgebench.cli import results, run  # noqa: F401

    try:
        # Without standalone mode Click returns typer.Exit's code instead of exiting.
        exit_code = app(standalone_mode=False)
    except UsageError as exc:
        print(f"edgebench: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except click_exceptions() as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("edgebench: aborted", file=sys.stderr)
        sys.exit(130)
    sys.exit(exit_code if isinstance(exit_code, int) else 0)


def click_exceptions():
    import click

    return click.ClickException

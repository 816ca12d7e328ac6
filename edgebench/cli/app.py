"""The Typer application every sub-command registers on, and how a command's end becomes an
exit status: a ``UsageError`` is one line and exit 2; Ctrl-C and SIGTERM are always honoured
(``edgebench/interrupts.py``: exit 130 and 143).

The sub-commands are imported by the entry point (``cli/main.py``), never from here, so a
command module may import ``app`` without a cycle.
"""

from __future__ import annotations

import sys

import typer

from edgebench.errors import UsageError
from edgebench.interrupts import interrupt_handlers

app = typer.Typer(
    name="edgebench",
    help="Benchmark and profile neural networks on embedded targets: the board is the judge.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def run_app() -> None:
    """Run ``app`` on ``sys.argv``, with the sub-commands already registered."""
    try:
        with interrupt_handlers():
            # Standalone mode: Typer reports its own usage errors (exit 2) and exits with the code.
            app()
    except UsageError as exc:
        print(f"edgebench: error: {exc}", file=sys.stderr)
        sys.exit(2)

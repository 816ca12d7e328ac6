"""The ``edgebench`` command: a thin layer over the library."""

from edgebench.cli.app import main

__all__ = ["main"]

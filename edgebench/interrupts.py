"""Ctrl-C and SIGTERM, and the points where taking them at once would leave things half done.

SIGTERM (a CI job cancelled, ``kill``, a service stopped) is taken like Ctrl-C: under the CLI
it raises ``Terminated``, a KeyboardInterrupt, so every path that ends a run cleanly on Ctrl-C
(run row ``interrupted``, records kept, board mode restored, lab place released) ends it the
same way; only the exit status differs (143 instead of 130, the shell's 128 + signal).

Python raises KeyboardInterrupt between any two bytecodes; these helpers hold it back over a
short write (a record, the run row) and over putting the board back, then raise it.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import ContextManager, TypeVar

T = TypeVar("T")

INTERRUPTS = (signal.SIGINT, signal.SIGTERM)
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, taken like Ctrl-C."""


def _terminate(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def interrupt_handlers() -> Iterator[None]:
    """For the block (a whole CLI command): SIGINT raises KeyboardInterrupt and SIGTERM raises
    Terminated; the previous handlers come back after it."""
    # A shell without job control starts background commands with SIGINT ignored, and Python
    # then leaves it ignored: `kill -INT` (or a CI cancel) would never reach the run.
    previous = {signum: signal.signal(signum, handler)
                for signum, handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, _terminate))}
    try:
        yield
    finally:
        _restore(previous)


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """The exit status of a command ended by ``interrupt``: 143 for SIGTERM, 130 for Ctrl-C."""
    return EXIT_TERMINATED if isinstance(interrupt, Terminated) else EXIT_INTERRUPTED


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Ctrl-C or SIGTERM during the block takes effect right after it, so the block is done
    whole. Outside the main thread signals never arrive, so nothing changes there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {signum: signal.signal(signum, lambda number, frame: received.append(number)) for signum in INTERRUPTS}
    try:
        yield
    finally:
        _restore(previous)
        if received:
            signal.raise_signal(received[0])  # the previous handler's turn: KeyboardInterrupt or Terminated


def _restore(handlers: dict) -> None:
    for signum, handler in handlers.items():
        signal.signal(signum, signal.SIG_DFL if handler is None else handler)


@contextlib.contextmanager
def exit_whole(context: ContextManager[T]) -> Iterator[T]:
    """``context``, whose exit (a restore: the board's power mode and clocks) a second Ctrl-C
    does not cut short; the tools it runs have their own timeouts."""
    value = context.__enter__()
    try:
        yield value
    except BaseException:
        with sigint_deferred():
            if not context.__exit__(*sys.exc_info()):
                raise
    else:
        with sigint_deferred():
            context.__exit__(None, None, None)

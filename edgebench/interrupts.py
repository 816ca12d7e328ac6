"""Ctrl-C at the points where taking it at once would leave things half done.

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


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Ctrl-C during the block takes effect right after it, so the block is done whole. Outside
    the main thread signals never arrive, so nothing changes there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
        if received:
            signal.raise_signal(signal.SIGINT)  # the previous handler's turn: KeyboardInterrupt by default


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

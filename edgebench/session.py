"""One run from start to end, the same for every client: ``edgebench run`` (one stage, or one per
target and mode of a suite), ``edgebench prune``, ``edgebench bake`` and the benchmark scripts.

``run_session`` opens, for each stage, the link to the board and the board session (power mode,
clocks, idle power; restored on the way out), opens the store and creates the run row once the
first board is ready (so a refused mode leaves no trace), hands out a ``Sweep`` for the stage,
stores each record as it is made, and finishes the run row: ``finished``, ``failed`` on an
error, ``interrupted`` on Ctrl-C or SIGTERM (the records stay).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from edgebench.errors import UsageError
from edgebench.interrupts import sigint_deferred
from edgebench.results.artifacts import ArtifactStore
from edgebench.results.record import Record, Settings
from edgebench.results.spool import RunWriter
from edgebench.sweep.board import BoardSession, board_session
from edgebench.sweep.config import SweepConfig
from edgebench.sweep.execute import Sweep
from edgebench.sweep.link import BoardLink, board_link
from edgebench.targets import resolve_target
from edgebench.targets.definition import TargetDefinition
from edgebench.vcs import git_commit


NOTHING_STORED = "interrupted before the run started: nothing stored"


def interrupted_line(session: Optional[RunSession]) -> str:
    """What a command interrupted with or without its run session says it kept."""
    return NOTHING_STORED if session is None else session.interrupted_line()


def available_definition(target: str) -> TargetDefinition:
    """The target's definition; a target that cannot run here is a usage error."""
    chosen = resolve_target(target)
    if not chosen.available:
        raise UsageError(f"target {chosen.name} cannot run here: {chosen.reason}")
    return chosen.definition


def device_of(definition: TargetDefinition, device: Optional[str]) -> str:
    """``--device``, checked against the target; its default device when not given."""
    if device is None:
        return definition.default_device
    if device not in definition.devices:
        raise UsageError(f"target {definition.name} has no device {device!r}; its devices: {', '.join(definition.devices)}")
    return device


@dataclass(frozen=True)
class BoardStage:
    """The board ready for one stage: its link, its session, and sweeps over them."""

    session: RunSession
    definition: TargetDefinition
    device: str
    link: BoardLink
    board: BoardSession

    def sweep(self, settings: Settings, **options) -> Sweep:
        """A sweep on this board under this run; ``options`` are the other ``SweepConfig`` fields."""
        board = self.board
        config = SweepConfig(settings=settings, target=self.definition, mode=board.mode, device=self.device,
                             power=board.power, idle=board.idle, board=board.env(self.definition), **options)
        return Sweep(config, self.session.run_id, self.link.environment, worker=self.link.worker, log=self.session.log,
                     artifacts=self.session.artifacts)


class RunSession:
    """A run's stages, its run row and the records kept so far. Made by ``run_session``."""

    def __init__(self, store: str | Path, stack: contextlib.ExitStack, tags: Mapping[str, str],
                 log: Callable[[str], None], command: Sequence[str]):
        self.store_location = store
        #: Where the measured files are kept (``results.artifacts``); None: an in-memory store's run.
        self.artifacts = ArtifactStore.beside(store)
        self.tags = dict(tags)
        self.log = log
        self.command = list(command)
        #: Every record stored so far, in order: what an interrupted run kept.
        self.records: list[Record] = []
        #: None until the first board is ready.
        self.run_id: Optional[str] = None
        self._stack = stack
        self._writer: Optional[RunWriter] = None

    @contextlib.contextmanager
    def stage(self, definition: TargetDefinition, device: str, *, mode: Optional[str] = None,
              lock_clocks: bool = False, power_interval_ms: int = 100,
              measure_power: bool = True) -> Iterator[BoardStage]:
        """The board of ``definition`` in ``mode`` for the block; the run row exists inside it."""
        notes: list[str] = []  # what could not be put back, said however the stage ended
        try:
            with board_link(definition, self.log) as link, \
                    board_session(definition, mode, lock_clocks, power_interval_ms, link.worker, link.shell,
                                  measure_power=measure_power, log=self.log) as board:
                notes = board.prepared.notes
                if measure_power and board.power is None:
                    self.log("power not measured: " + "; ".join(board.power_problems))
                self._start(link.environment)
                yield BoardStage(self, definition, device, link, board)
        finally:
            for note in notes:
                self.log(f"warning: {note}")

    def keep(self, record: Record) -> None:
        """Store ``record`` now (committed when this returns), so an interrupted run keeps it."""
        if self._writer is None:
            raise RuntimeError("a record before any stage started: records come from a stage's sweep")
        with sigint_deferred():  # stored and counted, or neither
            self._writer.add_record(record)
            self.records.append(record)

    def keep_all(self, records: Iterable[Record]) -> None:
        for record in records:
            self.keep(record)

    def interrupted_line(self) -> str:
        """What an interrupted run says it kept."""
        if self.run_id is None:
            return NOTHING_STORED
        return f"interrupted: {len(self.records)} record(s) kept in {self._writer.location} under run {self.run_id}"

    def _start(self, environment: dict) -> None:
        if self.run_id is not None:
            return
        with sigint_deferred():  # a run row is created with its id known, or not at all
            # The writer goes on in the spool if a server store cannot be reached (results.spool).
            self._writer = self._stack.enter_context(RunWriter(self.store_location, self.log))
            self.run_id = self._writer.start(host=environment["host"], git_commit=git_commit(Path.cwd()),
                                             command=self.command, tags=self.tags, env=environment).id

    def _finish(self, status: str) -> None:
        if self._writer is not None and self.run_id is not None:
            with sigint_deferred():
                self._writer.finish(status)


@contextlib.contextmanager
def run_session(store: str | Path, *, tags: Optional[Mapping[str, str]] = None,
                log: Callable[[str], None] = lambda line: None,
                command: Optional[Sequence[str]] = None) -> Iterator[RunSession]:
    """A run writing to ``store`` (a path, ``sqlite:///path``, ``:memory:`` or a ``postgresql://`` URL;
    the spool takes over if its server cannot be reached). The block's end
    finishes the run row: ``finished``; ``interrupted`` on KeyboardInterrupt and ``failed`` on
    any other exception, both raised on."""
    with contextlib.ExitStack() as stack:  # the store, opened by the first stage, closes last
        session = RunSession(store, stack, tags or {}, log, sys.argv if command is None else command)
        try:
            yield session
        except KeyboardInterrupt:
            session._finish("interrupted")
            raise
        except BaseException:
            session._finish("failed")
            raise
        session._finish("finished")

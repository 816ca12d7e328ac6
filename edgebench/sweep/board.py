"""Before a sweep: the board in the asked power mode (restored afterwards) and its idle power."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Optional

from edgebench.board.worker import PROTOCOL_VERSION
from edgebench.interrupts import exit_whole
from edgebench.sweep.transport import Shell, WorkerTransport
from edgebench.targets.definition import TargetDefinition
from edgebench.targets.jetson import PreparedTarget, power_mode

IDLE_SECONDS = 2.0


@dataclass
class BoardSession:
    prepared: PreparedTarget
    #: ``{"source", "interval_ms"}`` for the workers, or None when no source can be read.
    power: Optional[dict]
    idle: Optional[dict]
    power_problems: list[str] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return self.prepared.mode

    def env(self, definition: TargetDefinition) -> dict:
        """What the records say about the board's state during the run."""
        state = self.prepared
        return {
            "target": {"name": definition.name, "kind": definition.kind,
                       "remote": definition.remote.host if definition.remote else None},
            "nvpmodel": {"id": state.nvpmodel.nvpmodel_id, "name": state.nvpmodel.nvpmodel_name}
            if state.nvpmodel else None,
            "clocks_locked": state.clocks_locked,
            "power": {"source": self.power["source"], "interval_ms": self.power["interval_ms"]}
            if self.power else {"unavailable": self.power_problems},
        }


@contextlib.contextmanager
def board_session(definition: TargetDefinition, mode: Optional[str], lock_clocks: bool, power_interval_ms: int,
                  worker: WorkerTransport, shell: Shell, measure_power: bool = True,
                  log: Callable[[str], None] = lambda line: None) -> Iterator[BoardSession]:
    with exit_whole(power_mode(definition, mode, lock_clocks, shell)) as prepared:
        power, idle, problems = (idle_baseline(definition, power_interval_ms, worker, log) if measure_power
                                 else (None, None, ["power measurement turned off (--no-power)"]))
        yield BoardSession(prepared, power, idle, problems)


def idle_baseline(definition: TargetDefinition, interval_ms: int, worker: WorkerTransport,
                  log: Callable[[str], None] = lambda line: None) -> tuple[Optional[dict], Optional[dict], list[str]]:
    """The first of the target's power sources that reads, with the idle machine's power."""
    problems = []
    for source in definition.power_sources:
        power = {"source": source, "interval_ms": interval_ms}
        log(f"idle power: sampling {source} for {IDLE_SECONDS:g} s")
        result = worker.run({"protocol": PROTOCOL_VERSION, "task": "idle", "power": power,
                             "idle_s": IDLE_SECONDS}, timeout_s=60)
        if result["status"] == "ok":
            return power, result["idle"], problems
        problems.append(f"{source}: {result['error']}")
    if not definition.power_sources:
        problems.append(f"target {definition.name} lists no power sources")
    return None, None, problems

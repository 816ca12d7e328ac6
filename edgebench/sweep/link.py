"""How the workstation reaches the target: this machine, or a board over SSH.

Everything above this module talks to a worker and a shell and does not know where the board
is: a local subprocess and an SSH channel speak the same worker protocol.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from edgebench.errors import UsageError
from edgebench.board.worker import PROTOCOL_VERSION
from edgebench.sweep.local_worker import LocalWorker
from edgebench.sweep.transport import Shell, TransportError, WorkerTransport
from edgebench.targets.boards import board_mismatch
from edgebench.targets.definition import Remote, TargetDefinition
from edgebench.targets.shell import LocalShell


@dataclass(frozen=True)
class BoardLink:
    worker: WorkerTransport
    shell: Shell
    #: The measured machine's fingerprint, reported by its own worker.
    environment: dict


@contextlib.contextmanager
def board_link(definition: TargetDefinition, log: Callable[[str], None]) -> Iterator[BoardLink]:
    """The worker and shell for ``definition``; for a remote board, one SSH connection and the
    board's lock for the whole block, and a Jetson target checked against the board the worker
    reports (a local one was checked when the target resolved), before any mode is switched.
    A lab target's board is leased from its labgrid coordinator for the block first."""
    if definition.remote is None:
        worker = LocalWorker()
        yield BoardLink(worker, LocalShell(), environment(worker))
        return
    if definition.lab is None:
        with ssh_link(definition, definition.remote, definition.remote.host, log) as link:
            yield link
        return
    from edgebench.lab.lease import leased_board

    with leased_board(definition.lab, log) as leased:
        remote = definition.remote.model_copy(update={"host": leased.host, "port": leased.port, "user": leased.user})
        with ssh_link(definition, remote, f"place {leased.place} ({leased.host})", log) as link:
            # Records say which place the board was; machine_id, from the board itself, is unchanged.
            yield BoardLink(link.worker, link.shell, {**link.environment, "lab": leased.describe(definition.lab)})


@contextlib.contextmanager
def ssh_link(definition: TargetDefinition, remote: Remote, board_name: str,
             log: Callable[[str], None]) -> Iterator[BoardLink]:
    """The board at ``remote.host`` over one SSH connection, under its board lock; ``board_name``
    is how messages name it."""
    from edgebench.remote.lock import BoardLock
    from edgebench.remote.ssh import SshConnection, SshShell
    from edgebench.remote.ssh_worker import SshWorker

    connection = SshConnection(remote.host, remote.port, remote.user, remote.ssh_options, remote.env)
    try:
        version = connection.check(remote.python)
        log(f"connected to {remote.host} (Python {version})")
        try:
            worker = SshWorker(connection, remote.python, remote.workdir)
        except (TransportError, RuntimeError) as exc:
            raise UsageError(f"{remote.host}: cannot set up the worker: {exc}") from None
        with BoardLock(connection, worker.workdir, remote.lock_timeout_s, log):
            board = environment(worker)
            check_board(definition, board, board_name)
            yield BoardLink(worker, SshShell(connection, remote.sudo), board)
    finally:
        connection.close()


def check_board(definition: TargetDefinition, board: dict, board_name: str) -> None:
    """UsageError when a remote Jetson target's board is not the board it describes."""
    reason = board_mismatch(definition, board.get("jetson"), "the board") if definition.kind == "jetson" else None
    if reason is not None:
        raise UsageError(f"target {definition.name} cannot run on {board_name}: {reason}")


def environment(worker: WorkerTransport) -> dict:
    result = worker.run({"protocol": PROTOCOL_VERSION, "task": "environment"}, timeout_s=120)
    if result["status"] != "ok":
        raise UsageError(f"cannot read the target's environment: {result['error']}")
    return result["environment"]

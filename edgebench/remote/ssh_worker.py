"""The worker on a board: the same JSON protocol, over an SSH channel instead of a pipe."""

from __future__ import annotations

import shlex
from pathlib import Path

from edgebench.remote import deploy
from edgebench.remote.ssh import SSH_FAILURE, SshConnection, describe_ssh_failure, home_relative
from edgebench.sweep.local_worker import WORKER_MODULE, error_result, interpret, run_worker_process, timed_out

# coreutils' timeout exits 124 when it had to stop the command.
TIMEOUT_EXIT = 124
# The board enforces the timeout itself (killing the local ssh client does not stop a hung
# worker there); the local side waits this much longer for the board's answer.
TRANSPORT_MARGIN_S = 30.0


class SshWorker:
    """Runs ``python -m edgebench.board.worker`` on the board with the board's Python (a
    ``WorkerTransport``); the worker's code is deployed once when this is made."""

    remote = True

    def __init__(self, connection: SshConnection, python: str, workdir: str):
        self.connection = connection
        self.python = python
        self.workdir = resolve_workdir(connection, workdir)
        self.code_path = deploy.deploy_code(connection, self.workdir)

    def run(self, request: dict, timeout_s: float) -> dict:
        finished = run_worker_process(self.command(timeout_s), request, timeout_s + TRANSPORT_MARGIN_S)
        if finished is None:
            return timed_out(timeout_s)
        if finished.returncode == SSH_FAILURE and not finished.stdout.strip():
            message = describe_ssh_failure(self.connection.host, finished.stderr_tail)
            return error_result(f"connection lost during the measurement: {message}")
        if finished.returncode == TIMEOUT_EXIT and not finished.stdout.strip():
            return error_result(f"timed out on the board after {timeout_s:g} s (hung, or needs a larger --timeout)")
        return interpret(finished.returncode, finished.stdout, finished.stderr_tail)

    def command(self, timeout_s: float) -> list[str]:
        """The local ssh argv that starts a worker on the board, bounded there by ``timeout``."""
        argv = ["timeout", "-k", "10", f"{timeout_s:g}", self.python, "-m", WORKER_MODULE]
        remote = (f"cd {shlex.quote(self.workdir)} && PYTHONPATH={shlex.quote(self.code_path)} "
                  + self.connection.shell_command(argv))
        return self.connection.argv(remote)

    def artifact(self, path: Path) -> str:
        return deploy.upload_artifact(self.connection, self.workdir, path)

    @property
    def engine_cache_dir(self) -> str:
        return f"{self.workdir}/tensorrt"


def resolve_workdir(connection: SshConnection, workdir: str) -> str:
    """The board's absolute path for ``workdir`` (``~`` expanded there), created if missing."""
    quoted = home_relative(workdir)
    result = connection.run(f"mkdir -p {quoted} && cd {quoted} && pwd")
    if result.returncode != 0:
        raise RuntimeError(f"cannot create {workdir} on the board: {result.stderr.strip()}")
    return result.stdout.strip()

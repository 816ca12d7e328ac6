"""The worker on a board: the same JSON protocol, over an SSH channel instead of a pipe."""

from __future__ import annotations

import shlex
from pathlib import Path

from edgebench.remote import deploy
from edgebench.remote.ssh import SSH_FAILURE, SshConnection, describe_ssh_failure, home_relative
from edgebench.sweep.local_worker import WORKER_MODULE, LocalWorker, interpret

# coreutils' timeout exits 124 when it had to stop the command.
TIMEOUT_EXIT = 124


class RemoteWorker(LocalWorker):
    """Runs ``python -m edgebench.board.worker`` on the board with the board's Python."""

    remote = True
    # The board enforces the timeout itself (killing the local ssh client does not stop a hung
    # worker there); the local side waits a little longer for the board's answer.
    transport_margin_s = 30.0

    def __init__(self, connection: SshConnection, python: str, workdir: str):
        self.connection = connection
        self.python = python
        self.workdir = resolve_workdir(connection, workdir)
        self.code_path = deploy.deploy_code(connection, self.workdir)

    def command(self, timeout_s: float) -> list[str]:
        argv = ["timeout", "-k", "10", f"{timeout_s:g}", self.python, "-m", WORKER_MODULE]
        remote = (f"cd {shlex.quote(self.workdir)} && PYTHONPATH={shlex.quote(self.code_path)} "
                  + self.connection.shell_command(argv))
        return self.connection.argv(remote)

    def artifact(self, path: Path) -> str:
        return deploy.upload_artifact(self.connection, self.workdir, path)

    @property
    def engine_cache_dir(self) -> str:
        return f"{self.workdir}/tensorrt"

    def interpret(self, returncode: int, stdout: str, stderr_tail: str, timeout_s: float) -> dict:
        if returncode == SSH_FAILURE and not stdout.strip():
            message = describe_ssh_failure(self.connection.host, stderr_tail)
            return {"status": "error", "error": f"connection lost during the measurement: {message}", "warnings": []}
        if returncode == TIMEOUT_EXIT and not stdout.strip():
            return {"status": "error", "warnings": [],
                    "error": f"timed out on the board after {timeout_s:g} s (hung, or needs a larger --timeout)"}
        return interpret(returncode, stdout, stderr_tail)


def resolve_workdir(connection: SshConnection, workdir: str) -> str:
    """The board's absolute path for ``workdir`` (``~`` expanded there), created if missing."""
    quoted = home_relative(workdir)
    result = connection.run(f"mkdir -p {quoted} && cd {quoted} && pwd")
    if result.returncode != 0:
        raise RuntimeError(f"cannot create {workdir} on the board: {result.stderr.strip()}")
    return result.stdout.strip()

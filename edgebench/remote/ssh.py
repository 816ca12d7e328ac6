"""One SSH connection to a board, through the system's OpenSSH client.

Using ``ssh`` itself means ``~/.ssh/config``, keys, agents and jump hosts work as they do for
the user. A control master (``ControlMaster=auto``) makes every command of a run share one
connection. Failures that are the user's to fix (unreachable host, refused key) become one
clear line.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from typing import Optional

from edgebench.errors import UsageError
from edgebench.sweep.transport import CommandResult, TransportError

# ssh's own failures exit 255; the remote command's status is passed through otherwise.
SSH_FAILURE = 255
CONNECT_TIMEOUT_S = 15


class ConnectionLost(TransportError):
    """The connection broke while a command ran."""


class SshConnection:
    def __init__(self, host: str, port: Optional[int] = None, user: Optional[str] = None,
                 options: Sequence[str] = (), remote_env: Optional[Mapping[str, str]] = None):
        if shutil.which("ssh") is None:
            raise UsageError("remote targets need the OpenSSH client (ssh) on PATH")
        self.host = host
        self.remote_env = dict(remote_env or {})
        # A short private directory: control socket paths must fit in 104 bytes.
        self._control_dir = tempfile.mkdtemp(prefix="ebssh-")
        self._base = ["ssh", *options, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}",
                      "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
                      "-o", "ControlMaster=auto", "-o", f"ControlPath={self._control_dir}/%C",
                      "-o", "ControlPersist=120"]
        if port:
            self._base += ["-p", str(port)]
        if user:
            self._base += ["-l", user]

    def argv(self, command: str) -> list[str]:
        """The local argv that runs the shell ``command`` on the board."""
        return [*self._base, self.host, "--", command]

    def shell_command(self, argv: Sequence[str], sudo: bool = False) -> str:
        """``argv`` as one remote shell command, with the target's environment set."""
        env = [f"{key}={value}" for key, value in self.remote_env.items()]
        prefix = (["sudo", "-n"] if sudo else []) + (["env", *env] if env else [])
        return " ".join(shlex.quote(part) for part in prefix + list(argv))

    def run(self, command: str, input_bytes: Optional[bytes] = None, timeout_s: float = 120.0) -> CommandResult:
        """Run ``command`` (a remote shell command line); ConnectionLost when ssh itself failed."""
        try:
            proc = subprocess.run(self.argv(command), input=input_bytes if input_bytes is not None else b"",
                                  capture_output=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ConnectionLost(f"{self.host}: no answer within {timeout_s:g} s") from None
        stderr = proc.stderr.decode(errors="replace")
        if proc.returncode == SSH_FAILURE:
            raise ConnectionLost(describe_ssh_failure(self.host, stderr))
        return CommandResult(proc.returncode, proc.stdout.decode(errors="replace"), stderr)

    def check(self, python: str) -> str:
        """Connect once and check the board's Python; its version, or one clear line."""
        try:
            result = self.run(self.shell_command([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"]),
                              timeout_s=CONNECT_TIMEOUT_S + 15)
        except ConnectionLost as exc:
            raise UsageError(str(exc)) from None
        if result.returncode != 0:
            raise UsageError(f"{self.host}: the board's Python {python!r} does not run "
                             f"({last_line(result.stderr) or f'exit status {result.returncode}'}); "
                             "set python = \"/path/to/python3\" in the target file")
        return result.stdout.strip()

    def close(self) -> None:
        subprocess.run([*self._base, "-O", "exit", self.host], capture_output=True, timeout=30)
        shutil.rmtree(self._control_dir, ignore_errors=True)


def describe_ssh_failure(host: str, stderr: str) -> str:
    """One line for the ways an ssh connection fails."""
    text = stderr.lower()
    if "permission denied" in text:
        return f"{host}: the board refused the key (check the user, ~/.ssh/config and ssh-agent)"
    if "could not resolve hostname" in text:
        return f"{host}: unknown host name"
    if "connection refused" in text:
        return f"{host}: connection refused (is sshd running on the board?)"
    if "timed out" in text or "no route to host" in text or "network is unreachable" in text:
        return f"{host}: unreachable ({last_line(stderr)})"
    return f"{host}: connection failed or was lost ({last_line(stderr) or 'ssh exit status 255'})"


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


class SshShell:
    """The board's tools (nvpmodel, jetson_clocks) over the connection, stdin closed (a ``Shell``)."""

    def __init__(self, connection: SshConnection, sudo: bool = False):
        self.connection = connection
        self.sudo = sudo

    def run(self, argv: Sequence[str], timeout_s: float = 60.0) -> CommandResult:
        try:
            return self.connection.run(self.connection.shell_command(argv, sudo=self.sudo), timeout_s=timeout_s)
        except ConnectionLost as exc:
            raise UsageError(str(exc)) from None

    def temp_path(self, prefix: str) -> str:
        return f"/tmp/{prefix}{uuid.uuid4().hex[:12]}"

    def remove(self, path: str) -> None:
        try:
            self.connection.run(self.connection.shell_command(["rm", "-f", path], sudo=self.sudo))
        except ConnectionLost:
            pass  # the board is unreachable; a stray file in its /tmp is harmless


def home_relative(path: str) -> str:
    """A remote path for the shell: ``~/x`` stays expandable, anything else is quoted."""
    return "$HOME/" + shlex.quote(path[2:]) if path.startswith("~/") else shlex.quote(path)

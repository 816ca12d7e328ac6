"""A real OpenSSH server on loopback, with generated keys, for the remote-target tests.

Debian's openssh-server provides /usr/sbin/sshd (.ci/run installs it); where it is absent the
tests that need it skip with that reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

SSHD = "/usr/sbin/sshd"
HOST_ALIAS = "edgebench-test-board"


@dataclass
class SshServer:
    directory: Path
    port: int
    process: subprocess.Popen
    config: Path  # the client's ssh config: Host edgebench-test-board → this server

    @property
    def ssh_options(self) -> list[str]:
        return ["-F", str(self.config)]

    def connection_pids(self) -> list[int]:
        """The per-connection sshd processes (children of the listener)."""
        return _children(self.process.pid)

    def runs_worker(self) -> bool:
        """Whether a worker process runs under one of this server's connections now (not another
        test's: the tests may run in parallel)."""
        pending = self.connection_pids()
        while pending:
            pid = pending.pop()
            try:
                if b"edgebench.board.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return True
            except OSError:  # gone meanwhile
                continue
            pending += _children(pid)
        return False

    def cut_connections(self) -> None:
        """Drop every open connection, as a network failure would; the server keeps listening.
        Each connection is a privileged sshd and its unprivileged sshd child holding the socket;
        the commands they run on the 'board' are left alone, as a real network cut would."""
        doomed = []
        pending = self.connection_pids()
        while pending:
            pid = pending.pop()
            if _command_name(pid) == "sshd":
                doomed.append(pid)
                pending += _children(pid)
        for pid in doomed:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        self.cut_connections()
        self.process.terminate()
        self.process.wait(timeout=10)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(child) for child in out.split()]


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def sshd_missing_reason() -> str | None:
    if not os.path.exists(SSHD):
        return "needs Debian's openssh-server (/usr/sbin/sshd); .ci/run installs it"
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "needs the OpenSSH client (ssh, ssh-keygen)"
    return None


def start_sshd(directory: Path, *, client_key: Path | None = None, extra_config: Sequence[str] = ()) -> SshServer:
    """A server that lets in ``client_key`` (a new key in ``directory`` by default: several
    servers can share one key, as a lab's boards do); ``extra_config`` lines go into its
    sshd_config (``SetEnv`` gives each simulated board its own environment)."""
    directory.mkdir(parents=True, exist_ok=True)
    keys = ("host_key",) if client_key else ("host_key", "client_key")
    for name in keys:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / name)], check=True)
    client_key = client_key or directory / "client_key"
    (directory / "authorized_keys").write_text(Path(f"{client_key}.pub").read_text())
    port = _free_port()
    server_config = directory / "sshd_config"
    server_config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {directory / 'host_key'}",
        f"PidFile {directory / 'sshd.pid'}", f"AuthorizedKeysFile {directory / 'authorized_keys'}",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
        "PermitRootLogin yes", "StrictModes no", "UsePAM no", "LogLevel ERROR", "MaxSessions 50",
        "MaxStartups 50", *extra_config, ""]))
    os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory sshd insists on
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(server_config)], stderr=subprocess.DEVNULL)
    client_config = directory / "ssh_config"
    client_config.write_text("\n".join([
        f"Host {HOST_ALIAS}", "  HostName 127.0.0.1", f"  Port {port}", f"  User {_user()}",
        f"  IdentityFile {client_key}", "  IdentitiesOnly yes", "  StrictHostKeyChecking no",
        f"  UserKnownHostsFile {directory / 'known_hosts'}", "  LogLevel ERROR", ""]))
    _wait_for_port(port, process)
    return SshServer(directory, port, process, client_config)


def _user() -> str:
    import getpass

    return getpass.getuser()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with status {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("sshd did not start listening")

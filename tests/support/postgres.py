"""A throwaway PostgreSQL server on loopback, for the store tests and the store benchmarks.

Debian's ``postgresql`` package provides /usr/lib/postgresql/<version>/bin (.ci/run installs it);
where it is absent, ``start_postgres`` raises ``PostgresUnavailable`` with the reason and the
tests that need it skip. The server never touches the system's clusters: its data directory,
socket and log live in a fresh temporary directory, it listens on 127.0.0.1 at a free port with
trust authentication, and ``stop`` removes it all. As root, initdb refuses to run, so the server
runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

USER = "postgres"  # the superuser initdb creates: trust auth, no password
_STARTUP_TIMEOUT_S = 120  # generous: a loaded 2-core machine


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started here; the message says why."""


@dataclass
class PostgresServer:
    directory: Path
    port: int
    bin_dir: Path
    run_as: list[str]  # the command prefix that runs a server tool as the data directory's owner
    settings: str  # the server's command-line settings (port, socket directory, durability)

    def url(self, database: str = "postgres") -> str:
        """The URL edgebench takes as --store."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, ending whatever connections a test left open to it."""
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin(self, statement: str) -> None:
        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(statement)

    def start(self) -> None:
        """Start the server on its data directory (again, after ``halt``); return once it accepts."""
        _run("pg_ctl start", [*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.directory / "data"), "-l",
                              str(self.directory / "server.log"), "-w", "-t", str(_STARTUP_TIMEOUT_S),
                              "-o", self.settings, "start"])

    def halt(self) -> None:
        """Stop the server, keeping its databases (as a server going down would): open
        connections are ended."""
        _run("pg_ctl stop", [*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.directory / "data"),
                             "-m", "fast", "-w", "-t", str(_STARTUP_TIMEOUT_S), "stop"])

    def stop(self) -> None:
        """Stop the server and remove its files."""
        try:
            self.halt()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def postgres_bin_dir() -> Path:
    """The newest installed server's bin directory (Debian keeps one per major version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda path: int(Path(path).parts[-3]))
    if not found:
        raise PostgresUnavailable("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl; "
                                  "apt-get install postgresql)")
    return Path(found[-1]).parent


def start_postgres(*, durable: bool = False) -> PostgresServer:
    """A new server, started and ready. ``durable=False`` turns off fsync: tests do not survive
    power loss, and they run faster; a benchmark of inserts passes ``durable=True``."""
    bin_dir = postgres_bin_dir()
    run_as = _run_as_owner()
    # Not under pytest's tmp_path: that is private to root, and the server runs as postgres.
    directory = Path(tempfile.mkdtemp(prefix="edgebench-postgres-"))
    os.chmod(directory, 0o755)
    if run_as:
        account = pwd.getpwnam(USER)
        os.chown(directory, account.pw_uid, account.pw_gid)
    port = _free_port()
    settings = [f"-p {port}", "-c listen_addresses=127.0.0.1", f"-k {directory}", "-c max_connections=200"]
    if not durable:
        settings += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    server = PostgresServer(directory, port, bin_dir, run_as, " ".join(settings))
    try:
        _run("initdb", [*run_as, str(bin_dir / "initdb"), "-D", str(directory / "data"), "-U", USER,
                        "--auth=trust", "-E", "UTF8", "--no-sync"])
        server.start()
    except PostgresUnavailable as exc:
        log = directory / "server.log"
        server_log = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        shutil.rmtree(directory, ignore_errors=True)
        raise PostgresUnavailable(f"{exc}\n{server_log}".strip()) from None
    return server


def _run_as_owner() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(USER)
    except KeyError:
        raise PostgresUnavailable(f"running as root and there is no {USER!r} user to run the server as") from None
    return ["runuser", "-u", USER, "--"]


def _run(name: str, command: list[str]) -> None:
    completed = subprocess.run(command, capture_output=True, text=True, timeout=_STARTUP_TIMEOUT_S + 30)
    if completed.returncode != 0:
        raise PostgresUnavailable(f"{name} failed: {(completed.stderr or completed.stdout).strip()}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_postgres_or_skip() -> PostgresServer:
    """``start_postgres()`` for a test; the test skips, saying why, where PostgreSQL cannot start."""
    import pytest

    try:
        return start_postgres()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")

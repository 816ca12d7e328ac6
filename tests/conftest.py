import subprocess
import sys
import uuid
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
SUPPORT = TESTS / "support"


@pytest.fixture
def support_recipe():
    """A build_module recipe for a factory in tests/support/worker_models.py."""

    def recipe(factory, **kwargs):
        return {"format": "callable", "target": f"worker_models:{factory}", "kwargs": kwargs,
                "sys_path": [str(SUPPORT)]}

    return recipe


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """The console script's own entry point in this process (no interpreter start-up), from tmp_path."""
    from edgebench.cli.main import main

    monkeypatch.chdir(tmp_path)

    def invoke(*args):
        monkeypatch.setattr(sys, "argv", ["edgebench", *args])
        with pytest.raises(SystemExit) as exited:
            main()
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(args, exited.value.code or 0, captured.out, captured.err)

    return invoke


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """ONNX exports go to a per-session cache, never the user's ~/.cache."""
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "edgebench-cache"))


sys.path.insert(0, str(SUPPORT))


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server on loopback for the session (tests/support/postgres.py),
    stopped and removed at its end; the test skips, saying why, where PostgreSQL cannot start."""
    from postgres import start_postgres_or_skip

    server = start_postgres_or_skip()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """The URL of a new, empty database of its own on the session's server, dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:16]
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request, tmp_path):
    """Where a fresh store goes, once as a SQLite file and once as a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def sshd(tmp_path_factory):
    """A real OpenSSH server on loopback (tests/support/sshd.py), stopped after the test."""
    from sshd import sshd_missing_reason, start_sshd

    reason = sshd_missing_reason()
    if reason:
        pytest.skip(reason)
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()

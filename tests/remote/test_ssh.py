"""The SSH layer against a real OpenSSH server on loopback."""

import sys
import threading
import time

import pytest

from edgebench.errors import UsageError
from edgebench.remote import deploy
from edgebench.remote.lock import BoardLock
from edgebench.remote.ssh import SshConnection
from edgebench.remote.ssh_worker import SshWorker
from onnx_models import matmul_relu
from sshd import HOST_ALIAS

FAST = {"min_time_s": 0.2, "max_time_s": 1.0, "min_iterations": 5, "warmup_s": 0.05, "target_ci": 0.01}


@pytest.fixture
def connection(sshd):
    conn = SshConnection(HOST_ALIAS, options=sshd.ssh_options)
    yield conn
    conn.close()


def test_connection_runs_commands_and_reports_the_boards_python(connection):
    assert connection.check(sys.executable) == "%d.%d.%d" % sys.version_info[:3]
    assert connection.run("echo hello").stdout == "hello\n"


def test_one_connection_is_reused(connection, sshd):
    for _ in range(5):
        connection.run("true")
    assert len(sshd.connection_pids()) == 1  # one TCP connection (the control master), not five


def test_missing_python_is_one_clear_line(connection):
    with pytest.raises(UsageError, match="the board's Python 'python9.9' does not run"):
        connection.check("python9.9")


def test_refused_key_and_unreachable_host_are_one_line(sshd, tmp_path):
    config = sshd.config.read_text().replace("IdentityFile", "#IdentityFile")
    (tmp_path / "config").write_text(config)
    with pytest.raises(UsageError, match="the board refused the key"):
        SshConnection(HOST_ALIAS, options=["-F", str(tmp_path / "config")]).check("python3")
    with pytest.raises(UsageError, match="connection refused"):
        SshConnection("127.0.0.1", port=1, options=["-o", "StrictHostKeyChecking=no"]).check("python3")


def test_code_and_artifacts_are_sent_once(connection, tmp_path):
    workdir = str(tmp_path / "board")
    first = deploy.deploy_code(connection, workdir)
    marker = (tmp_path / "board" / "code" / first.rsplit("/", 1)[1] / ".complete")
    assert marker.exists()
    stamp = marker.stat().st_mtime_ns
    assert deploy.deploy_code(connection, workdir) == first
    assert marker.stat().st_mtime_ns == stamp  # not unpacked again
    model = tmp_path / "m.onnx"
    matmul_relu(str(model))
    remote = deploy.upload_artifact(connection, workdir, model)
    assert open(remote, "rb").read() == model.read_bytes()
    mtime = (tmp_path / "board" / "artifacts").stat().st_mtime_ns
    assert deploy.upload_artifact(connection, workdir, model) == remote
    assert (tmp_path / "board" / "artifacts").stat().st_mtime_ns == mtime


def test_worker_runs_on_the_board_with_its_python(connection, tmp_path):
    worker = SshWorker(connection, sys.executable, str(tmp_path / "board"))
    model = tmp_path / "m.onnx"
    matmul_relu(str(model))
    request = {"protocol": 1, "backend": "onnxruntime", "device": "cpu",
               "model": {"format": "onnx", "path": worker.artifact(model)},
               "inputs": [{"name": "input", "shape": [2, 16], "dtype": "float32"}], "threads": 1,
               "settings": FAST, "backend_options": {}, "allow_hooks": False}
    result = worker.run(request, timeout_s=120)
    assert result["status"] == "ok", result.get("error")
    assert len(result["samples_ms"]) >= 5


def test_a_second_client_waits_for_the_board(sshd, tmp_path):
    workdir = str(tmp_path)
    first, second = (SshConnection(HOST_ALIAS, options=sshd.ssh_options) for _ in range(2))
    messages = []
    with BoardLock(first, workdir, timeout_s=30):
        waited = {}

        def contend():
            started = time.monotonic()
            with BoardLock(second, workdir, timeout_s=30, log=messages.append):
                waited["s"] = time.monotonic() - started

        thread = threading.Thread(target=contend)
        thread.start()
        time.sleep(3)
        assert thread.is_alive()  # still waiting while the first holds the board
    thread.join(timeout=30)
    assert waited["s"] >= 2.5
    assert messages and "is busy: locked by" in messages[0] and "waiting up to 30 s" in messages[0]
    first.close()
    second.close()


def test_a_busy_board_times_out_with_a_clear_line(sshd, tmp_path):
    first, second = (SshConnection(HOST_ALIAS, options=sshd.ssh_options) for _ in range(2))
    with BoardLock(first, str(tmp_path), timeout_s=30):
        with pytest.raises(UsageError, match="stayed busy for 2 s"):
            with BoardLock(second, str(tmp_path), timeout_s=2):
                pass
    first.close()
    second.close()

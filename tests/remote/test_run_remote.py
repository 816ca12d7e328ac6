"""`edgebench run` on a board reached over SSH: a real sshd on loopback, this machine as the
board, with the emulated Jetson's tools passed through the target's [remote] env."""

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from edgebench.remote.lock import BoardLock
from edgebench.remote.ssh import SshConnection
from fake_jetson import make_emulated_jetson
from sshd import HOST_ALIAS

SUPPORT = Path(__file__).resolve().parents[1] / "support"
FAST = ["--min-time", "1", "--max-time", "2", "--warmup", "0.2", "--min-iterations", "5", "--threads", "1",
        "--processes", "1", "--device", "cpu"]


@pytest.fixture
def board(tmp_path):
    return make_emulated_jetson(tmp_path / "board", "xavier")


@pytest.fixture
def target_file(sshd, board, tmp_path):
    return write_target(tmp_path / "my-xavier.toml", sshd, board, tmp_path / "board-workdir")


def write_target(path, sshd, board, workdir):
    """An AGX Xavier target file for the emulated ``board`` behind the loopback sshd."""
    env = {"EDGEBENCH_SYSROOT": str(board.root), "PATH": f"{board.bin}:{os.environ['PATH']}"}
    path.write_text("\n".join([
        'name = "my-xavier"', 'kind = "jetson"',
        'devices = ["gpu", "cpu"]', 'default_device = "gpu"', 'backends = ["eager", "onnxruntime"]',
        'power_sources = ["tegrastats"]',
        'modes = [{ name = "maxn", nvpmodel_id = 0 }, { name = "15w", nvpmodel_id = 2 }]',
        "[thermal]", "limit_c = 85.0",
        "[board]", 'soc = "tegra194"', 'modules = ["p2888", "p2972-0000"]',
        "[remote]", f'host = "{HOST_ALIAS}"', f'python = "{sys.executable}"',
        f'workdir = "{workdir}"', f'ssh_options = ["-F", "{sshd.config}"]',
        "lock_timeout_s = 120",
        "[remote.env]", *(f'{key} = "{value}"' for key, value in env.items()), ""]))
    return path


def start(target_file, cwd, *args):
    # The workstation's own environment has no emulated Jetson: the board has it.
    env = {key: value for key, value in os.environ.items() if key != "EDGEBENCH_SYSROOT"}
    env["PYTHONPATH"] = str(SUPPORT)
    return subprocess.Popen([sys.executable, "-m", "edgebench", "run", "--target", str(target_file), *args],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_remote_run_measures_on_the_board_and_restores_its_mode(target_file, board, tmp_path):
    proc = start(target_file, tmp_path, "--mode", "maxn", "-m", "worker_models:tiny", "--input-shape", "3x16x16",
                 "-b", "eager,onnxruntime", "--json", *FAST)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    records = json.loads(stdout)
    assert [r["backend"] for r in records] == ["eager", "onnxruntime"]
    for record in records:
        assert record["status"] == "ok", record["error"]
        assert (record["target"], record["mode"]) == ("my-xavier", "maxn")
        assert record["env"]["target"]["remote"] == HOST_ALIAS
        assert record["env"]["jetson"]["model"] == "NVIDIA Jetson AGX Xavier Developer Kit"  # the board's
        assert (record["env"]["jetson"]["soc"], record["env"]["jetson"]["module"]) == ("tegra194", "p2972-0000")
        assert record["env"]["jetson"]["serial"] == "1422919082000"
        assert record["energy"]["source"] == "tegrastats"
    assert f"connected to {HOST_ALIAS}" in stderr
    assert board.state()["history"] == [0, 2]  # MAXN for the run, MODE_15W again after
    artifacts = list((tmp_path / "board-workdir" / "artifacts").iterdir())
    assert sorted(p.suffix for p in artifacts) == [".onnx", ".pt"]  # ONNX, and TorchScript for eager


@pytest.mark.parametrize("kind, reported", [
    ("xavier-nx", "the board is an Xavier NX (module p3668-0000, tegra194, model 'NVIDIA Jetson Xavier NX Developer Kit'), "
                  "not an AGX Xavier (target my-xavier takes tegra194 with module p2888 or p2972-0000)"),
    ("orin", "the board is an AGX Orin (module p3701-0000, tegra234, model 'Jetson AGX Orin Developer Kit'), "
             "not an AGX Xavier (target my-xavier takes tegra194 with module p2888 or p2972-0000)"),
])
def test_a_board_that_is_not_the_targets_is_refused_before_any_mode_switch(sshd, tmp_path, kind, reported):
    board = make_emulated_jetson(tmp_path / "board", kind)
    target = write_target(tmp_path / "my-xavier.toml", sshd, board, tmp_path / "board-workdir")
    proc = start(target, tmp_path, "--mode", "maxn", "-m", "worker_models:tiny", "--input-shape", "3x8x8", *FAST)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 2, stderr
    assert stderr.strip().splitlines()[-1] == f"edgebench: error: target my-xavier cannot run on {HOST_ALIAS}: {reported}"
    assert len([line for line in stderr.splitlines() if line.startswith("edgebench: error")]) == 1
    assert "history" not in board.state()  # nvpmodel was never asked to switch


def test_connection_cut_mid_measurement_is_an_error_record_and_the_run_goes_on(sshd, target_file, board, tmp_path):
    proc = start(target_file, tmp_path, "--mode", "maxn", "-m", "worker_models:tiny", "-m", "worker_models:tiny?channels=4",
                 "--input-shape", "3x16x16", "-b", "onnxruntime", "--json",
                 "--min-time", "6", "--max-time", "6", *FAST[4:])
    wait_for_line(proc, "run ")  # printed once the idle baseline is taken, just before measuring
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not sshd.runs_worker():
        time.sleep(0.1)
    time.sleep(2)  # inside the 6 s timed loop
    sshd.cut_connections()
    stdout, stderr = proc.communicate(timeout=300)
    assert stdout, stderr
    records = json.loads(stdout)
    assert proc.returncode == 1, stderr
    assert records[0]["status"] == "error"
    assert records[0]["error"].startswith("connection lost during the measurement")
    assert records[1]["status"] == "ok"  # the next measurement reconnected
    assert board.state()["mode"] == 2  # restored once the board answered again


def test_a_second_workstation_waits_for_the_busy_board(sshd, target_file, tmp_path):
    # The first workstation is a real board lock held over SSH, released only once the run has
    # said it waits: how long the run takes to start on a loaded machine cannot matter.
    workdir = tmp_path / "board-workdir"
    workdir.mkdir(exist_ok=True)
    connection = SshConnection(HOST_ALIAS, options=sshd.ssh_options)
    first = BoardLock(connection, str(workdir), timeout_s=60).__enter__()
    try:
        second = start(target_file, tmp_path, "-m", "worker_models:tiny", "--input-shape", "3x16x16",
                       "-b", "onnxruntime", "--json", *FAST)
        waiting = wait_for_line(second, "board ")
    finally:
        released_at = datetime.now(timezone.utc)
        first.__exit__(None, None, None)
        connection.close()
    second_out, second_err = second.communicate(timeout=300)
    assert "is busy: locked by" in waiting
    assert second.returncode == 0, second_err
    record = json.loads(second_out)[0]
    assert datetime.fromisoformat(record["created_at"]) >= released_at


def wait_for_line(proc, start: str) -> str:
    """Read the run's stderr until a line starting with ``start`` and return it; the rest stays
    readable."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(start):
            return line
    pytest.fail("the run ended before printing %r: %s" % (start, "".join(seen)))

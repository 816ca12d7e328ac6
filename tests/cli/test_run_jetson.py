"""`edgebench run --target xavier --mode maxn` end to end on an emulated Jetson.

The models are measured on this CPU for real; nvpmodel, jetson_clocks and tegrastats are the
emulated tools from tests/support/fake_jetson.py, replaying captured output.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fake_jetson import make_emulated_jetson

SUPPORT = Path(__file__).resolve().parents[1] / "support"
FAST = ["--min-time", "1", "--max-time", "2", "--warmup", "0.2", "--min-iterations", "5", "--threads", "1",
        "--processes", "1", "--device", "cpu"]


def edgebench(board, *args, cwd):
    env = {**os.environ, **board.env, "PYTHONPATH": str(SUPPORT)}
    return subprocess.run([sys.executable, "-m", "edgebench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def xavier(tmp_path):
    return make_emulated_jetson(tmp_path / "board", "xavier")


def test_run_in_maxn_records_mode_energy_and_restores_the_mode(xavier, tmp_path):
    proc = edgebench(xavier, "run", "--target", "xavier", "--mode", "maxn", "-m", "worker_models:tiny",
                     "--input-shape", "3x32x32", "-b", "onnxruntime", "--json", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)[0]
    assert (record["target"], record["mode"], record["device"]) == ("xavier", "maxn", "cpu")
    assert record["env"]["nvpmodel"] == {"id": 0, "name": "MAXN"}
    assert record["env"]["jetson"]["model"] == "NVIDIA Jetson AGX Xavier Developer Kit"
    energy = record["energy"]
    assert energy["source"] == "tegrastats" and energy["samples"] >= 5
    # captured rails: idle line sums to 7632 mW, the MAXN load line to 32850 mW
    assert energy["idle_power_w"] == pytest.approx(7.632)
    assert 7.632 <= energy["avg_power_w"] <= 32.85 + 1e-9
    # On a loaded machine the worker may never look busy to the emulated tegrastats, so every
    # reading can be the idle line: dynamic energy is then zero, up to float rounding.
    assert energy["mj_per_inference"] > energy["dynamic_mj_per_inference"] >= -1e-9
    assert record["memory_mb"]["device_peak"] is not None
    assert record["throttled"] is False  # CPU 49 C, GPU 54.5 C under an 85 C limit; PMIC's fixed 100 C ignored
    assert xavier.state()["mode"] == 2  # MODE_15W again
    assert xavier.state()["history"] == [0, 2]


def test_a_mode_that_needs_a_reboot_stops_before_measuring(xavier, tmp_path):
    proc = edgebench(xavier, "run", "--target", "xavier", "--mode", "10w", "-m", "worker_models:tiny",
                     "--input-shape", "3x8x8", *FAST, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "edgebench: error: mode 10w (nvpmodel id 1) needs a reboot to take effect; nothing was changed. Switch to "
        "it by hand (sudo nvpmodel -m 1, confirm the reboot), then run with --mode 10w"]
    assert xavier.state()["mode"] == 2
    assert not (tmp_path / "results").exists()


def test_lock_clocks_and_hot_board(xavier, tmp_path):
    hot = xavier.root / "sys" / "class" / "thermal" / "thermal_zone0" / "temp"
    hot.write_text("91000\n")
    proc = edgebench(xavier, "run", "--target", "xavier", "--lock-clocks", "-m", "worker_models:tiny",
                     "--input-shape", "3x8x8", "-b", "eager", "--json", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)[0]
    assert record["mode"] == "15w" and record["env"]["clocks_locked"] is True
    assert record["throttled"] is True
    assert "throttled: CPU-therm reached 91.0 C, at or over the 85 C limit" in record["warnings"]
    assert xavier.state()["clocks_locked"] is False


@pytest.mark.parametrize("args, message", [
    (["--target", "xavier", "--mode", "turbo"], "target xavier has no mode 'turbo'; its modes: maxn, 10w"),
    (["--target", "xavier", "--device", "npu"], "target xavier has no device 'npu'; its devices: gpu, dla0, dla1, cpu"),
    (["--target", "orin"], "target orin cannot run here: this machine is an AGX Xavier (module p2972-0000, tegra194, "
                           "model 'NVIDIA Jetson AGX Xavier Developer Kit'), not an AGX Orin"),
])
def test_bad_target_input_is_one_line(xavier, tmp_path, args, message):
    proc = edgebench(xavier, "run", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr


def test_targets_lists_the_emulated_board_as_available(xavier, tmp_path):
    proc = edgebench(xavier, "targets", "--json", cwd=tmp_path)
    listed = {entry["name"]: entry for entry in json.loads(proc.stdout)}
    assert listed["local"]["resolves_to"] == "xavier"
    assert listed["xavier"]["available"] is True and listed["xavier"]["reason"] is None
    assert listed["x86-cpu"]["available"] is False
    assert listed["xavier"]["modes"][:3] == ["maxn", "10w", "15w"]
    assert set(listed["xavier"]) >= {"name", "kind", "available", "reason", "modes", "devices", "backends"}


def test_an_r32_agx_xavier_is_the_xavier_target(tmp_path):
    """L4T R32's device tree calls an AGX Xavier "Jetson-AGX": the board is still recognised."""
    board = make_emulated_jetson(tmp_path / "board", "xavier-r32")
    listed = {entry["name"]: entry for entry in json.loads(edgebench(board, "targets", "--json", cwd=tmp_path).stdout)}
    assert listed["local"]["resolves_to"] == "xavier"
    assert listed["xavier"]["available"] is True


def test_an_xavier_nx_is_not_switched_as_an_agx_xavier(tmp_path):
    board = make_emulated_jetson(tmp_path / "board", "xavier-nx")
    proc = edgebench(board, "run", "--target", "xavier", "--mode", "maxn", "-m", "worker_models:tiny",
                     "--input-shape", "3x8x8", *FAST, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "edgebench: error: target xavier cannot run here: this machine is an Xavier NX (module p3668-0000, tegra194, "
        "model 'NVIDIA Jetson Xavier NX Developer Kit'), not an AGX Xavier (target xavier takes tegra194 with module "
        "p2888 or p2972-0000)"]
    assert board.state() == {"mode": 2}  # nvpmodel never asked to switch


def test_cooldown_waits_until_the_board_is_under_its_limit(xavier, tmp_path):
    zone = xavier.root / "sys" / "class" / "thermal" / "thermal_zone0" / "temp"
    zone.write_text("90000\n")
    env = {**os.environ, **xavier.env, "PYTHONPATH": str(SUPPORT)}
    proc = subprocess.Popen([sys.executable, "-m", "edgebench", "run", "--target", "xavier", "--cooldown",
                             "-m", "worker_models:tiny", "--input-shape", "3x8x8", "-b", "eager", "--json", *FAST],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    stderr_seen = ""
    while time.monotonic() < deadline and "cooling down" not in stderr_seen:
        stderr_seen += proc.stderr.readline()
    zone.write_text("50000\n")  # the board has cooled
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "cooling down: CPU-therm at 90.0 C, limit 85 C" in stderr_seen
    record = json.loads(stdout)[0]
    assert record["status"] == "ok" and record["throttled"] is False


def test_targets_say_why_a_listed_backend_cannot_run_here(xavier, tmp_path):
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    listed = {entry["name"]: entry for entry in json.loads(edgebench(xavier, "targets", "--json", cwd=tmp_path).stdout)}
    assert listed["xavier"]["backends_unavailable"] == {
        "tensorrt": "the Python package 'tensorrt' is not installed here"}

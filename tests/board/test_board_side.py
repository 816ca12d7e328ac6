"""The worker side runs on boards: Python 3.8 (JetPack 5 on Xavier), only numpy and the backend."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from onnx_models import matmul_relu

REPO = Path(__file__).resolve().parents[2]
BOARD_SIDE = sorted((REPO / "edgebench" / "board").rglob("*.py")) + [REPO / "edgebench" / "__init__.py"]
BOARD_MODULES = ["edgebench." + ".".join(p.relative_to(REPO / "edgebench").with_suffix("").parts)
                 for p in BOARD_SIDE if p.name != "__init__.py"]
# Heavy workstation libraries that must never load in a worker.
WORKSTATION_ONLY = {"pydantic", "pandas", "typer", "rich", "click", "scipy", "onnx", "pyarrow"}


def python38():
    """A working Python 3.8 interpreter, or None (a pyenv shim may exist yet refuse to run)."""
    candidates = [os.path.expanduser("~/.pyenv/versions/3.8.18/bin/python"), shutil.which("python3.8")]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 8)":
            return candidate
    return None


def test_board_side_imports_only_stdlib_and_numpy():
    probe = (
        "import sys, json\n"
        "before = set(sys.modules)\n"
        f"for name in {BOARD_MODULES!r}: __import__(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))\n"
    )
    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", probe], text=True)))
    third_party = loaded - set(sys.stdlib_module_names) - {"edgebench", "numpy"}
    assert third_party == set(), f"board-side modules import {third_party}"


def test_onnxruntime_worker_loads_no_workstation_library(tmp_path):
    path = matmul_relu(str(tmp_path / "m.onnx"))
    request = {"protocol": 1, "backend": "onnxruntime", "device": "cpu", "model": {"format": "onnx", "path": path},
               "inputs": [{"name": "input", "shape": [2, 16], "dtype": "float32"}], "threads": 1,
               "settings": {"min_time_s": 0.1, "max_time_s": 0.5, "min_iterations": 5, "warmup_s": 0.01,
                            "target_ci": 0.05}, "backend_options": {}, "allow_hooks": False}
    probe = (
        "import sys, json, io\n"
        "from edgebench.board.worker import handle\n"
        f"result = handle(json.loads({json.dumps(json.dumps(request))}))\n"
        "print(json.dumps([result['status'], sorted({m.split('.')[0] for m in sys.modules})]))\n"
    )
    status, loaded = json.loads(subprocess.check_output([sys.executable, "-c", probe], text=True).splitlines()[-1])
    assert status == "ok"
    assert "onnxruntime" in loaded
    assert WORKSTATION_ONLY.isdisjoint(loaded), WORKSTATION_ONLY & set(loaded)
    assert "torch" not in loaded


@pytest.fixture(scope="session")
def py38_env():
    """A Python 3.8 virtualenv with numpy and onnxruntime (the board's set-up), made once."""
    interpreter = python38()
    if interpreter is None:
        pytest.skip("Python 3.8 is not installed here (pyenv 3.8.18 or python3.8 on PATH)")
    venv = REPO / ".venv" / "py38-board"
    python = venv / "bin" / "python"
    if not (venv / ".ready").exists():
        subprocess.run([interpreter, "-m", "venv", "--clear", str(venv)], check=True)
        install = subprocess.run([str(python), "-m", "pip", "install", "-q", "numpy", "onnxruntime"],
                                 capture_output=True, text=True)
        if install.returncode != 0:
            pytest.skip("cannot install numpy and onnxruntime for Python 3.8: " + install.stderr.strip()[-300:])
        (venv / ".ready").touch()
    return python


def test_board_side_compiles_on_python_38():
    interpreter = python38()
    if interpreter is None:
        pytest.skip("Python 3.8 is not installed here (pyenv 3.8.18 or python3.8 on PATH)")
    proc = subprocess.run([interpreter, "-m", "py_compile", *map(str, BOARD_SIDE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_worker_measures_on_python_38_with_onnxruntime(py38_env, tmp_path):
    path = matmul_relu(str(tmp_path / "m.onnx"), opset=13)
    request = {"protocol": 1, "backend": "onnxruntime", "device": "cpu", "model": {"format": "onnx", "path": path},
               "inputs": [{"name": "input", "shape": [2, 16], "dtype": "float32"}], "threads": 1,
               "settings": {"min_time_s": 0.2, "max_time_s": 1.0, "min_iterations": 5, "warmup_s": 0.05,
                            "target_ci": 0.05}, "backend_options": {"allow_spinning": False}, "allow_hooks": False}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([str(py38_env), "-m", "edgebench.board.worker"], input=json.dumps(request),
                          capture_output=True, text=True, env=env, timeout=120)
    result = json.loads(proc.stdout)
    assert result["status"] == "ok", (result.get("error"), proc.stderr[-2000:])
    assert result["python"].startswith("3.8.")
    assert len(result["samples_ms"]) >= 5

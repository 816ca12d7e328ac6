"""Where TensorRT, CUDA or a precision is missing, the record says ``unavailable`` and why: real
worker processes, and ``edgebench run`` on an emulated desktop GPU machine."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cpu_target import CPU_TARGET
from onnx_models import matmul_relu

SUPPORT = Path(__file__).resolve().parents[1] / "support"
FAST = {"min_time_s": 0.2, "max_time_s": 1.0, "min_iterations": 5, "warmup_s": 0.05, "target_ci": 0.05}
FAST_CLI = ["--min-time", "0.2", "--max-time", "1", "--warmup", "0.05", "--min-iterations", "5", "--processes", "1"]
# A stand-in `tensorrt` package: just enough for the runner to get past its import and ask for CUDA.
FAKE_TENSORRT = '''
__version__ = {version!r}

class BuilderFlag:
    __members__ = {{name: index for index, name in enumerate({flags!r})}}
'''


def run_worker(request, env=None):
    request = {"protocol": 1, "device": "gpu", "settings": FAST, "threads": None, "backend_options": {},
               "allow_hooks": False, **request}
    proc = subprocess.run([sys.executable, "-m", "edgebench.board.worker"], input=json.dumps(request),
                          capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def onnx_request(tmp_path, backend="tensorrt", **extra):
    path = matmul_relu(str(tmp_path / "m.onnx"))
    return {"backend": backend, "model": {"format": "onnx", "path": path},
            "inputs": [{"name": "input", "shape": [2, 16], "dtype": "float32"}], **extra}


def fake_tensorrt(tmp_path, version="10.3.0", flags=("FP16", "INT8", "GPU_FALLBACK")):
    folder = tmp_path / "fake_tensorrt"
    folder.mkdir(exist_ok=True)
    (folder / "tensorrt.py").write_text(FAKE_TENSORRT.format(version=version, flags=list(flags)))
    return {"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}


def cuda_python_installed():
    return importlib.util.find_spec("cuda") is not None and (
        importlib.util.find_spec("cuda.bindings") is not None or importlib.util.find_spec("cuda.cudart") is not None)


def test_tensorrt_missing_is_unavailable_with_the_reason(tmp_path):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here: the missing-library path cannot be shown")
    result = run_worker(onnx_request(tmp_path))
    assert result["status"] == "unavailable"
    assert "TensorRT is not installed here" in result["error"] and "pip install tensorrt" in result["error"]
    assert "Traceback" not in result["error"]


def test_tensorrt_without_a_cuda_device_is_unavailable_with_the_reason(tmp_path):
    result = run_worker(onnx_request(tmp_path), env=fake_tensorrt(tmp_path))
    assert result["status"] == "unavailable", result
    if not cuda_python_installed():
        assert "cuda-python is not installed" in result["error"]
        return
    if "no usable CUDA device" not in result["error"] and "no CUDA device" not in result["error"]:
        pytest.fail("expected the missing CUDA device as the reason, got: %s" % result["error"])


@pytest.mark.parametrize("version, flags, precision, device, reason", [
    ("11.1.0", ("GPU_FALLBACK",), "fp16", "gpu", "has no FP16 builder flag"),
    ("10.3.0", ("FP16", "INT8", "GPU_FALLBACK"), "fp32", "dla0", "DLA cores run fp16 or int8 only"),
    ("10.3.0", ("FP16", "INT8", "GPU_FALLBACK"), "fp16", "cpu", "TensorRT runs on the GPU or a DLA core"),
])
def test_a_combination_tensorrt_cannot_build_is_unavailable(tmp_path, version, flags, precision, device, reason):
    result = run_worker(onnx_request(tmp_path, precision=precision, device=device),
                        env=fake_tensorrt(tmp_path, version, flags))
    assert result["status"] == "unavailable"
    assert reason in result["error"]


@pytest.mark.parametrize("backend, precision, options, status, reason", [
    ("onnxruntime", "fp16", {}, "unavailable", "onnxruntime with CPUExecutionProvider runs fp32, not fp16"),
    ("onnxruntime", "int8", {}, "unavailable", "runs fp32, not int8"),
    ("onnxruntime", "fp32", {"provider": "tensorrt"}, "error", "onnxruntime.provider picks the GPU provider"),
])
def test_onnxruntime_on_the_cpu_refuses_what_it_cannot_do(tmp_path, backend, precision, options, status, reason):
    result = run_worker(onnx_request(tmp_path, backend=backend, device="cpu", precision=precision,
                                     backend_options=options))
    assert result["status"] == status
    assert reason in result["error"]


def test_eager_fp16_on_the_cpu_is_unavailable(support_recipe):
    result = run_worker({"backend": "eager", "device": "cpu", "precision": "fp16", "model": support_recipe("tiny"),
                         "inputs": [{"name": "x", "shape": [1, 3, 8, 8], "dtype": "float32"}]})
    assert result["status"] == "unavailable"
    assert result["error"] == "eager on cpu runs fp32, not fp16"


def test_onnxruntime_gpu_without_its_provider_is_unavailable(tmp_path):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    result = run_worker(onnx_request(tmp_path, backend="onnxruntime", backend_options={"provider": "cuda"}))
    assert result["status"] == "unavailable"
    assert "CUDAExecutionProvider is not in this onnxruntime build" in result["error"]


def emulated_gpu_machine(tmp_path):
    """A system root where detection finds a desktop NVIDIA GPU (its /proc/driver/nvidia entry)."""
    root = tmp_path / "sysroot"
    (root / "proc" / "driver" / "nvidia" / "gpus" / "0000:01:00.0").mkdir(parents=True)
    return {"EDGEBENCH_SYSROOT": str(root)}


def edgebench(*args, cwd, env):
    env = {**os.environ, "PYTHONPATH": str(SUPPORT), **env}
    return subprocess.run([sys.executable, "-m", "edgebench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_run_on_a_gpu_target_without_tensorrt_records_unavailable_and_exits_0(tmp_path):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here: the missing-library path cannot be shown")
    path = matmul_relu(str(tmp_path / "m.onnx"))
    proc = edgebench("run", "-m", path, "--target", "cuda-gpu", "-b", "tensorrt", "--precision", "fp32,fp16",
                     "--no-power", "--json", *FAST_CLI, cwd=tmp_path, env=emulated_gpu_machine(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    records = json.loads(proc.stdout)
    assert [(r["backend"], r["precision"], r["status"]) for r in records] == [
        ("tensorrt", "fp32", "unavailable"), ("tensorrt", "fp16", "unavailable")]
    for record in records:
        assert record["target"] == "cuda-gpu" and record["device"] == "gpu"
        assert "TensorRT is not installed here" in record["error"]
        assert record["latency_ms"] is None and record["device_latency_ms"] is None


@pytest.mark.parametrize("args, message", [
    (["--precision", "fp64"], "--precision takes fp32, fp16, int8, not 'fp64'"),
    (["-b", "tensorflow"], "unknown backend 'tensorflow'"),
])
def test_usage_errors_stay_exit_2(tmp_path, args, message):
    (tmp_path / "cpu.toml").write_text(CPU_TARGET)
    proc = edgebench("run", "-m", "worker_models:tiny", "--target", "cpu.toml", *args, cwd=tmp_path, env={})
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr

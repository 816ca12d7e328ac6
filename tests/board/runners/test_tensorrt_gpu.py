"""TensorRT, eager and ONNX Runtime on a real NVIDIA GPU: each test skips where the GPU or the
library is missing. None of these has run yet (see docs/hardware.md)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from onnx_models import matmul_relu

FAST = {"min_time_s": 0.3, "max_time_s": 2.0, "min_iterations": 10, "warmup_s": 0.1, "target_ci": 0.05}
NO_GPU = "needs an NVIDIA GPU and TensorRT: not available on this machine"


def cuda_device():
    """The CUDA device's name through cuda-python, or None."""
    from edgebench.board.runners.base import RunnerError
    from edgebench.board.runners.cuda_runtime import Cuda, import_cudart

    try:
        return Cuda(import_cudart()).require_device()
    except (ImportError, RunnerError):
        return None


@pytest.fixture
def tensorrt_gpu():
    if importlib.util.find_spec("tensorrt") is None or cuda_device() is None:
        pytest.skip(NO_GPU)


@pytest.fixture
def torch_gpu():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU with CUDA PyTorch: not available on this machine")


def run_worker(request):
    request = {"protocol": 1, "device": "gpu", "settings": FAST, "threads": None, "backend_options": {},
               "allow_hooks": False, **request}
    proc = subprocess.run([sys.executable, "-m", "edgebench.board.worker"], input=json.dumps(request),
                          capture_output=True, text=True, timeout=600, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def trt_request(tmp_path, **extra):
    path = matmul_relu(str(tmp_path / "m.onnx"), features=256)
    return {"backend": "tensorrt", "model": {"format": "onnx", "path": path},
            "inputs": [{"name": "input", "shape": [8, 256], "dtype": "float32"}],
            "engine_cache_dir": str(tmp_path / "engines"), **extra}


def test_tensorrt_fp32_builds_caches_and_times_on_the_device(tensorrt_gpu, tmp_path):
    first = run_worker(trt_request(tmp_path))
    assert first["status"] == "ok", first["error"]
    engine = first["backend"]["engine"]
    assert engine["cache"] == "miss" and engine["build_s"] > 0
    assert first["backend"]["deserialize_s"] > 0
    assert len(first["device_samples_ms"]) == len(first["samples_ms"]) >= 10
    assert all(0 < device <= host * 1.5 for device, host in zip(first["device_samples_ms"], first["samples_ms"]))
    second = run_worker(trt_request(tmp_path))
    assert second["status"] == "ok", second["error"]
    assert second["backend"]["engine"]["cache"] == "hit"
    assert second["backend"]["engine"]["key"] == engine["key"]
    assert second["backend"]["engine"]["build_s"] is None
    assert second["backend"]["engine"]["cached_build_s"] == pytest.approx(engine["build_s"])


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_tensorrt_reduced_precisions(tensorrt_gpu, tmp_path, precision):
    result = run_worker(trt_request(tmp_path, precision=precision))
    if result["status"] == "unavailable":  # TensorRT 11 has no precision flags
        pytest.skip(result["error"])
    assert result["status"] == "ok", result["error"]
    assert result["backend"]["options"]["builder_flags"] == [precision.upper()]
    if precision == "int8":
        assert result["backend"]["int8_calibration"]["source"] == "random"
        assert any("int8 calibrated on random inputs" in warning for warning in result["warnings"])


def test_tensorrt_copies_graphs_and_layer_profile(tensorrt_gpu, tmp_path):
    result = run_worker(trt_request(tmp_path, include_copies=True, cuda_graphs=True, profile_layers=True))
    assert result["status"] == "ok", result["error"]
    assert result["backend"]["include_copies"] is True
    assert result["backend"]["cuda_graphs"] is True, result["warnings"]
    rows = result["layer_profile"]
    assert rows and all(row["runs"] > 0 and row["median_ms"] >= 0 for row in rows)
    assert any(row["onnx_nodes"] for row in rows)


def test_eager_on_the_gpu_times_events_and_peak_memory(torch_gpu, support_recipe):
    for precision in ("fp32", "fp16"):
        result = run_worker({"backend": "eager", "model": support_recipe("tiny"), "precision": precision,
                             "inputs": [{"name": "x", "shape": [4, 3, 32, 32], "dtype": "float32"}]})
        assert result["status"] == "ok", result["error"]
        assert len(result["device_samples_ms"]) == len(result["samples_ms"])
        assert result["backend"]["device_peak_mb"] > 0
        assert result["backend"]["include_copies"] is False


def test_onnxruntime_cuda_provider(tmp_path):
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers() or cuda_device() is None:
        pytest.skip("needs an NVIDIA GPU and onnxruntime-gpu: not available on this machine")
    path = matmul_relu(str(tmp_path / "m.onnx"))
    for include_copies in (False, True):
        result = run_worker({"backend": "onnxruntime", "model": {"format": "onnx", "path": path},
                             "include_copies": include_copies,
                             "inputs": [{"name": "input", "shape": [8, 16], "dtype": "float32"}]})
        assert result["status"] == "ok", result["error"]
        assert result["backend"]["providers"][0] == "CUDAExecutionProvider"
        assert result["backend"]["include_copies"] is include_copies

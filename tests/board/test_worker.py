"""The worker process for real: JSON in on stdin, one JSON result out on stdout."""

import json
import subprocess
import sys

import pytest

from onnx_models import matmul_relu

FAST = {"min_time_s": 0.2, "max_time_s": 1.0, "min_iterations": 5, "warmup_s": 0.05, "target_ci": 0.01}


def run_worker(request, timeout=120):
    request = {"protocol": 1, "device": "cpu", "settings": FAST, "threads": 1, "backend_options": {},
               "allow_hooks": False, **request}
    proc = subprocess.run([sys.executable, "-m", "edgebench.board.worker"], input=json.dumps(request),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout must hold the result alone: {proc.stdout!r}"
    return json.loads(lines[0])


IMAGE = [{"name": "x", "shape": [1, 3, 16, 16], "dtype": "float32"}]


def test_eager_measures_a_model(support_recipe):
    result = run_worker({"backend": "eager", "model": support_recipe("tiny"), "inputs": IMAGE})
    assert result["status"] == "ok", result["error"]
    assert len(result["samples_ms"]) >= 5
    assert all(s > 0 for s in result["samples_ms"])
    assert result["build_s"] > 0 and result["first_inference_ms"] > 0
    assert result["backend"]["library"] == "torch"
    assert result["backend"]["options"]["threads"] == 1
    assert result["memory_mb"]["host_peak"] > 50
    assert result["protocol"] == 1


def test_onnxruntime_records_the_options_that_change_timing(tmp_path):
    path = matmul_relu(str(tmp_path / "m.onnx"), input_name="odd name:0/with spaces é")
    result = run_worker({
        "backend": "onnxruntime", "model": {"format": "onnx", "path": path},
        "inputs": [{"name": "odd name:0/with spaces é", "shape": [4, 16], "dtype": "float32"}],
        "backend_options": {"allow_spinning": False, "graph_optimization_level": "basic"},
    })
    assert result["status"] == "ok", result["error"]
    options = result["backend"]["options"]
    assert options["intra_op_threads"] == 1
    assert options["allow_spinning"] is False
    assert options["graph_optimization_level"] == "ORT_ENABLE_BASIC"
    assert options["execution_mode"] == "ORT_SEQUENTIAL"  # untouched, still recorded
    assert sorted(options["set"]) == ["allow_spinning", "graph_optimization_level", "intra_op_threads"]
    assert result["backend"]["providers"] == ["CPUExecutionProvider"]


def test_hooks_and_prune_masks_are_refused_by_name(support_recipe):
    result = run_worker({"backend": "eager", "model": support_recipe("pruned"), "inputs": IMAGE})
    assert result["status"] == "error"
    assert "features.0: prune mask on weight" in result["error"]
    assert "head: forward hook" in result["error"]
    assert "--allow-hooks" in result["error"]


def test_allow_hooks_measures_and_names_them(support_recipe):
    result = run_worker({"backend": "eager", "model": support_recipe("pruned"), "inputs": IMAGE,
                         "allow_hooks": True})
    assert result["status"] == "ok"
    assert result["backend"]["hooks"] == ["features.0: prune mask on weight", "head: forward hook"]


def test_a_torch_export_program_measures_in_eager_its_own_hooks_are_not_user_hooks(tmp_path):
    import torch

    from worker_models import TinyConvNet

    path = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(TinyConvNet().eval(), (torch.randn(1, 3, 16, 16),)), str(path))
    result = run_worker({"backend": "eager", "model": {"format": "torch-export", "path": str(path)},
                         "inputs": IMAGE})
    assert result["status"] == "ok", result["error"]
    assert result["backend"]["hooks"] == []


def test_input_shape_the_model_rejects(support_recipe):
    result = run_worker({"backend": "eager", "model": support_recipe("tiny"),
                         "inputs": [{"name": "x", "shape": [1, 4, 16, 16], "dtype": "float32"}]})
    assert result["status"] == "error"
    assert result["error"].startswith("first inference failed with inputs x 1x4x16x16: RuntimeError")


def test_output_printed_by_the_model_does_not_corrupt_the_result(support_recipe):
    result = run_worker({"backend": "eager", "model": support_recipe("chatty"), "inputs": IMAGE})
    assert result["status"] == "ok"


def test_not_a_module_is_a_clear_error(support_recipe):
    result = run_worker({"backend": "eager", "model": support_recipe("not_a_module"), "inputs": IMAGE})
    assert result["status"] == "error"
    assert "did not produce a torch.nn.Module (got str)" in result["error"]


def test_eager_refuses_dla(support_recipe):
    result = run_worker({"backend": "eager", "device": "dla0", "model": support_recipe("tiny"), "inputs": IMAGE})
    assert result["status"] == "unavailable"
    assert "DLA cores run TensorRT engines only" in result["error"]


def test_unknown_backend_and_protocol():
    assert run_worker({"backend": "nope", "model": {}, "inputs": []})["status"] == "unavailable"
    result = run_worker({"backend": "eager", "model": {}, "inputs": [], "protocol": 99})
    assert result["status"] == "error" and "protocol" in result["error"]


def test_cuda_device_is_unavailable_without_a_gpu(support_recipe):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = run_worker({"backend": "eager", "device": "gpu", "model": support_recipe("tiny"), "inputs": IMAGE})
    assert result["status"] == "unavailable"
    assert "CUDA" in result["error"]

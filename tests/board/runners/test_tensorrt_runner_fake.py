"""The TensorRT runner end to end in a worker, on stand-ins for tensorrt and cuda-python
(tests/support/fake_tensorrt.py). This checks the runner's own plumbing (engine cache, builder
configuration, buffers, copies, CUDA graphs, profiler, DLA report, record fields); it is no
evidence that the runner works with real TensorRT, which has not run here."""

import sys

import numpy as np
import pytest

from edgebench.board import worker
from edgebench.board.harness import LoopSettings, measure
from edgebench.board.synthetic_inputs import make_inputs
from edgebench.board.runners import tensorrt as trt_runner
from fake_tensorrt import FEATURES, FakeCudart, make_tensorrt
from onnx_models import matmul_relu

FAST = {"min_time_s": 0.05, "max_time_s": 0.5, "min_iterations": 5, "warmup_s": 0.01, "target_ci": 0.5}


@pytest.fixture
def fakes(monkeypatch):
    """Install a fake tensorrt and CUDA runtime; returns a function to swap them for variants."""

    def install(version="10.3.0", dla_cores=0, devices=1, capture_fails=False):
        cuda = FakeCudart(devices=devices, capture_fails=capture_fails)
        trt = make_tensorrt(version, dla_cores, cuda)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        monkeypatch.setattr(trt_runner, "import_cudart", lambda: cuda)
        return trt, cuda

    return install


@pytest.fixture
def request_for(tmp_path):
    path = matmul_relu(str(tmp_path / "m.onnx"), features=FEATURES)

    def make(**extra):
        return {"protocol": 1, "backend": "tensorrt", "device": "gpu", "model": {"format": "onnx", "path": path},
                "inputs": [{"name": "input", "shape": [4, FEATURES], "dtype": "float32"}], "settings": FAST,
                "threads": None, "backend_options": {}, "allow_hooks": False,
                "engine_cache_dir": str(tmp_path / "engines"), **extra}

    return make


def test_fp32_engine_is_built_cached_and_reused(fakes, request_for):
    trt, _ = fakes()
    first = worker.handle(request_for())
    assert first["status"] == "ok", first["error"]
    backend = first["backend"]
    assert backend["library"] == "tensorrt" and backend["device_name"] == "Fake GPU 9000 (sm_89)"
    assert backend["engine"]["cache"] == "miss" and backend["engine"]["build_s"] > 0
    assert backend["engine"]["path"].endswith(".engine")
    assert backend["deserialize_s"] >= 0 and backend["include_copies"] is False and backend["cuda_graphs"] is False
    assert backend["options"]["builder_flags"] == [] and backend["dla"] is None
    assert first["device_samples_ms"] == [0.25] * len(first["samples_ms"])
    # The dynamic batch dimension got one optimization profile at the measured shape.
    build = trt.builds[0]
    assert build.config.profiles[0].shape == [4, FEATURES]
    assert build.network.flags == 0  # TensorRT 10: no EXPLICIT_BATCH
    assert build.config.profiling_verbosity == trt.ProfilingVerbosity.DETAILED

    second = worker.handle(request_for())
    assert second["status"] == "ok", second["error"]
    assert second["backend"]["engine"]["cache"] == "hit"
    assert second["backend"]["engine"]["build_s"] is None
    assert second["backend"]["engine"]["cached_build_s"] == pytest.approx(backend["engine"]["build_s"])
    assert len(trt.builds) == 1


def test_another_shape_or_precision_is_another_engine(fakes, request_for):
    trt, _ = fakes()
    worker.handle(request_for())
    other_shape = request_for(inputs=[{"name": "input", "shape": [8, FEATURES], "dtype": "float32"}])
    assert worker.handle(other_shape)["backend"]["engine"]["cache"] == "miss"
    result = worker.handle(request_for(precision="fp16", backend_options={"workspace_mb": 256}))
    assert result["backend"]["engine"]["cache"] == "miss"
    assert trt.builds[-1].config.flags == ["FP16"] and trt.builds[-1].config.pool == 256 * 1024 * 1024
    assert result["backend"]["options"]["workspace_mb"] == 256 and result["backend"]["options"]["set"] == ["workspace_mb"]


def test_tensorrt_8_5_networks_are_explicit_batch(fakes, request_for):
    trt, _ = fakes(version="8.5.2.2")
    assert worker.handle(request_for())["status"] == "ok"
    assert trt.builds[0].network.flags == 1


def test_a_broken_cached_engine_is_rebuilt(fakes, request_for, tmp_path):
    trt, _ = fakes()
    path = worker.handle(request_for())["backend"]["engine"]["path"]
    with open(path, "wb") as handle:
        handle.write(b"garbage")
    result = worker.handle(request_for())
    assert result["status"] == "ok", result["error"]
    assert "the cached TensorRT engine did not deserialize; it was rebuilt" in result["warnings"]
    assert result["backend"]["engine"]["cache"] == "miss" and len(trt.builds) == 2


def test_without_a_cache_directory_the_engine_is_built_each_time(fakes, request_for):
    fakes()
    request = request_for()
    del request["engine_cache_dir"]
    result = worker.handle(request)
    assert result["backend"]["engine"]["cache"] == "off" and result["backend"]["engine"]["path"] is None


def run_runner(request):
    runner = trt_runner.TensorRTRunner(request)
    inputs = make_inputs(request["inputs"])
    measure(runner, inputs, LoopSettings.from_dict(FAST))
    return runner, inputs


def test_copies_move_the_data_through_the_engine(fakes, request_for):
    _, cuda = fakes()
    runner, inputs = run_runner(request_for(include_copies=True))
    np.testing.assert_array_equal(runner.outputs[0].host, np.maximum(inputs["input"], 0))
    assert {"cudaMemcpyHostToDevice", "cudaMemcpyDeviceToHost"} <= set(cuda.copies)
    assert runner.describe()["include_copies"] is True
    runner.close()
    assert len(cuda.freed) == 4  # two device buffers, two pinned host buffers


def test_without_copies_the_inputs_stay_on_the_device(fakes, request_for):
    _, cuda = fakes()
    runner, _ = run_runner(request_for())
    assert cuda.copies == [] and runner.outputs[0].host is None


def test_cuda_graphs_replay_the_captured_work(fakes, request_for):
    _, cuda = fakes()
    runner, inputs = run_runner(request_for(cuda_graphs=True, include_copies=True))
    assert cuda.launches > 5 and runner.describe()["cuda_graphs"] is True
    np.testing.assert_array_equal(runner.outputs[0].host, np.maximum(inputs["input"], 0))


def test_a_failed_capture_measures_without_graphs_and_says_so(fakes, request_for):
    _, cuda = fakes(capture_fails=True)
    result = worker.handle(request_for(cuda_graphs=True))
    assert result["status"] == "ok", result["error"]
    assert cuda.launches == 0 and result["backend"]["cuda_graphs"] is False
    assert any(w.startswith("CUDA graph capture failed") for w in result["warnings"])
    assert any(w.startswith("--cuda-graphs: not used by tensorrt") for w in result["warnings"])


def test_layer_profile_ties_layers_to_onnx_nodes(fakes, request_for):
    fakes()
    result = worker.handle(request_for(profile_layers=True))
    assert result["layer_profile"] == [{
        "layer": "MatMul_0 + Relu_1", "module": None,  # the test graph's nodes name no module
        "type": "CaskGemm", "onnx_nodes": ["MatMul_0", "Relu_1"], "calls": 1, "runs": trt_runner.LAYER_PROFILE_RUNS, "median_ms": 0.125, "mean_ms": 0.125, "share": 1.0}]


def test_int8_calibrates_on_the_random_inputs_and_says_so(fakes, request_for):
    trt, _ = fakes()
    result = worker.handle(request_for(precision="int8"))
    assert result["status"] == "ok", result["error"]
    assert trt.builds[0].config.flags == ["INT8"]
    assert trt.builds[0].config.calibration_profile is trt.builds[0].config.profiles[0]
    runner, _ = run_runner(request_for(precision="int8", engine_cache_dir=None))
    assert runner.engine.plan["calibration_batches"] == 1
    assert result["backend"]["int8_calibration"]["source"] == "random"
    assert any(w.startswith("int8 calibrated on random inputs") for w in result["warnings"])


def test_int8_calibrates_on_a_file_of_samples(fakes, request_for, tmp_path):
    trt, _ = fakes()
    samples = str(tmp_path / "samples.npz")
    np.savez(samples, input=np.random.default_rng(0).standard_normal((12, FEATURES)).astype(np.float32))
    result = worker.handle(request_for(precision="int8", backend_options={"calibration": samples}))
    assert result["status"] == "ok", result["error"]
    assert result["backend"]["int8_calibration"]["source"] == "file"
    assert not any("random" in w for w in result["warnings"])
    runner, _ = run_runner(request_for(precision="int8", backend_options={"calibration": samples},
                                       engine_cache_dir=None))
    assert runner.engine.plan["calibration_batches"] == 3  # twelve samples, batches of four
    bad = worker.handle(request_for(precision="int8", backend_options={"calibration": str(tmp_path / "no.npz")}))
    assert bad["status"] == "error" and "cannot read the calibration file" in bad["error"]


def test_dla_build_reports_the_layers_that_fell_back(fakes, request_for):
    trt, _ = fakes(dla_cores=2)
    result = worker.handle(request_for(device="dla1", precision="fp16"))
    assert result["status"] == "ok", result["error"]
    config = trt.builds[0].config
    assert config.default_device_type == trt.DeviceType.DLA and config.DLA_core == 1
    assert config.flags == ["FP16", "GPU_FALLBACK"]
    dla = result["backend"]["dla"]
    assert dla["core"] == 1 and dla["source"] == "build log"
    assert dla["dla_subgraphs"] == ["{ForeignNode[MatMul_0]}"]
    assert dla["gpu_layers"] == [{"layer": "Relu_1", "type": "ACTIVATION"}]
    assert dla["unsupported_on_dla"] == [{"layer": "Relu_1", "type": "ACTIVATION"}]
    # From the cache, the report comes from the sidecar.
    assert worker.handle(request_for(device="dla1", precision="fp16"))["backend"]["dla"] == dla


def test_a_dla_core_the_machine_lacks_is_unavailable(fakes, request_for):
    fakes(dla_cores=0)
    result = worker.handle(request_for(device="dla0", precision="fp16"))
    assert result["status"] == "unavailable"
    assert result["error"] == "this machine has 0 DLA core(s); there is no dla0"


def test_no_cuda_device_is_unavailable(fakes, request_for):
    fakes(devices=0)
    assert worker.handle(request_for()) == {"status": "unavailable", "error": "no CUDA device on this machine",
                                            "warnings": []}
    fakes(devices=None)
    assert worker.handle(request_for())["error"] == "no usable CUDA device: cudaErrorNoDevice"

"""Precision as a sweep dimension, requested backends whose library is missing, and the record
fields of the GPU path (device time, copies, deserialization, device memory, layer profile, NVML)."""

from pathlib import Path

import pytest

from edgebench.board.machine import machine_identity
from edgebench.errors import UsageError
from edgebench.models import InputSpec, ResolvedModel
from edgebench.results.record import Record, Settings
from edgebench.sweep.config import SweepConfig
from edgebench.sweep.execute import Sweep
from edgebench.sweep.plan import check_precisions, choose_backends, plan
from edgebench.sweep.records import make_record
from edgebench.targets import builtin_definitions

MODEL = ResolvedModel(spec="m.onnx", name="m.onnx", kind="onnx", recipe=None, onnx_path=Path("m.onnx"),
                      fingerprint="sha256:" + "0" * 64, inputs=(InputSpec("input", ("batch", 16), "float32"),))
SETTINGS = Settings(min_time_s=1, max_time_s=2, min_iterations=5, warmup_s=0.1, target_ci=0.01, timeout_s=60)


def config(target="cuda-gpu", **extra):
    return SweepConfig(settings=SETTINGS, target=builtin_definitions()[target], mode="default", device="gpu", **extra)


def test_a_requested_backend_the_target_runs_is_planned_even_when_not_installed_here(monkeypatch):
    monkeypatch.setattr("edgebench.sweep.plan.is_installed", lambda name: name != "tensorrt")
    assert choose_backends(["tensorrt", "eager"], ["eager", "onnxruntime", "tensorrt"]) == ["tensorrt", "eager"]
    # Not requested: only what is installed.
    assert choose_backends([], ["eager", "onnxruntime", "tensorrt"]) == ["eager", "onnxruntime"]
    with pytest.raises(UsageError, match="unknown backend 'tensorflow'"):
        choose_backends(["tensorflow"], ["eager"])
    with pytest.raises(UsageError, match="the target does not run backend 'tensorrt'"):
        choose_backends(["tensorrt"], ["eager", "onnxruntime"])


def test_precision_is_a_sweep_dimension_between_batch_and_backend():
    measurements = plan([MODEL], ["onnxruntime", "tensorrt"], [1, 4], backends_requested=True,
                        precisions=["fp32", "fp16"]).measurements
    assert [(m.batch, m.precision, m.backend) for m in measurements] == [
        (1, "fp32", "onnxruntime"), (1, "fp32", "tensorrt"), (1, "fp16", "onnxruntime"), (1, "fp16", "tensorrt"),
        (4, "fp32", "onnxruntime"), (4, "fp32", "tensorrt"), (4, "fp16", "onnxruntime"), (4, "fp16", "tensorrt")]
    assert plan([MODEL], ["onnxruntime"], [1], backends_requested=True).measurements[0].precision == "fp32"
    assert check_precisions(["fp16", "int8", "fp16"]) == ["fp16", "int8"]
    with pytest.raises(UsageError, match="--precision takes fp32, fp16, int8, not 'fp8'"):
        check_precisions(["fp8"])


def test_the_request_carries_precision_the_engine_cache_and_the_gpu_options(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    measurement = plan([MODEL], ["tensorrt"], [2], backends_requested=True, precisions=["int8"]).measurements[0]
    sweep = Sweep(config(include_copies=True, cuda_graphs=True, profile_layers=True), "run", {})
    request = sweep.request(measurement)
    assert request["precision"] == "int8"
    assert request["engine_cache_dir"] == str(tmp_path / "cache" / "tensorrt")
    assert (request["include_copies"], request["cuda_graphs"], request["profile_layers"]) == (True, True, True)
    assert request["gpu_state"] is True
    assert request["inputs"] == [{"name": "input", "shape": [2, 16], "dtype": "float32"}]
    assert Sweep(config("x86-cpu"), "run", {}).request(measurement)["gpu_state"] is False


TRT_BACKEND = {
    "library": "tensorrt", "version": "10.3.0", "device": "gpu", "precision": "fp16",
    "options": {"workspace_mb": None, "builder_flags": ["FP16"], "set": []},
    "engine": {"cache": "hit", "key": "k" * 32, "build_s": None, "cached_build_s": 41.0},
    "deserialize_s": 0.12, "include_copies": False, "cuda_graphs": True, "dla": None, "device_peak_mb": 96.0,
}


def ok_result(**extra):
    return {"status": "ok", "error": None, "warnings": [], "samples_ms": [2.0, 2.1, 2.05, 2.02, 1.98, 2.01],
            "device_samples_ms": [1.50, 1.52, 1.51, 1.49, 1.50, 1.51], "stop_reason": "converged",
            "warmup_iterations": 3, "build_s": 0.4, "first_inference_ms": 9.0, "backend": TRT_BACKEND,
            "memory_mb": {"host_peak": 300.0}, "power": [], "system": [], **extra}


def record_of(result, precision="fp16"):
    measurement = plan([MODEL], ["tensorrt"], [1], backends_requested=True, precisions=[precision]).measurements[0]
    return make_record(measurement, result, run_id="run", config=config(), host_env={"host": "h"})


def test_the_record_carries_the_gpu_fields():
    profile = [{"layer": "/fc/Gemm", "type": "CaskGemm", "onnx_nodes": ["/fc/Gemm"], "runs": 20,
                "median_ms": 0.4, "mean_ms": 0.41, "share": 1.0}]
    gpu = [{"start": {"sm_mhz": 1980, "energy_mj": 1000}, "end": {"sm_mhz": 1965, "energy_mj": 4000}}]
    record = record_of(ok_result(layer_profile=profile, gpu_state=gpu))
    assert record.precision == "fp16"
    assert record.latency_ms.p50 == pytest.approx(2.015)
    assert record.device_latency_ms.p50 == pytest.approx(1.505)
    assert record.include_copies is False
    assert record.deserialize_s == 0.12 and record.build_s == 0.4
    assert record.memory_mb.device_peak == 96.0
    assert record.layer_profile == profile
    assert record.env["gpu"] == gpu
    assert record.env["backend"]["engine"]["cache"] == "hit" and record.env["backend"]["cuda_graphs"] is True
    assert not {"include_copies", "deserialize_s", "device_peak_mb", "options"} & set(record.env["backend"])
    # Through JSON and back: the store keeps every new field.
    assert Record.model_validate(record.to_json_dict()) == record


def test_a_cpu_record_has_none_of_them():
    backend = {"library": "onnxruntime", "version": "1.20", "device": "cpu", "options": {}, "include_copies": None}
    result = ok_result(backend=backend)
    del result["device_samples_ms"]
    record = record_of(result, precision="fp32")
    assert record.device_latency_ms is None and record.include_copies is None and record.deserialize_s is None
    assert record.layer_profile is None and "gpu" not in record.env
    assert record.memory_mb.device_peak is None


def test_an_unavailable_record_keeps_its_precision_and_reason():
    record = record_of({"status": "unavailable", "error": "TensorRT is not installed here", "warnings": []},
                       precision="int8")
    assert (record.status, record.precision, record.error) == ("unavailable", "int8", "TensorRT is not installed here")
    assert record.latency_ms is None and record.device_latency_ms is None


def test_a_sweep_record_says_how_and_on_which_machine_it_was_measured():
    measurement = plan([MODEL], ["tensorrt"], [1], backends_requested=True, precisions=["fp16"]).measurements[0]
    reported = make_record(measurement, ok_result(), run_id="run", config=config(),
                           host_env={"host": "h", "machine_id": "0123456789abcdef"})
    assert (reported.method, reported.machine_id) == ("sweep", "0123456789abcdef")
    assert record_of(ok_result()).machine_id == machine_identity({"host": "h"})  # an older worker: computed
    assert make_record(measurement, ok_result(), run_id="run", config=config(), host_env={}).machine_id is None


def test_old_records_without_the_new_fields_still_load():
    record = record_of(ok_result())
    old = {k: v for k, v in record.to_json_dict().items()
           if k not in ("device_latency_ms", "include_copies", "deserialize_s", "layer_profile")}
    assert Record.model_validate(old).device_latency_ms is None

"""Desktop GPU state through NVML (clocks, temperature, memory, energy counter), with a stand-in
pynvml module for machines without an NVIDIA GPU."""

import sys
import time
import types

import pytest

from edgebench.board import gpu_state, samplers, worker
from onnx_models import matmul_relu


class FakeNvml(types.ModuleType):
    """The part of nvidia-ml-py the GPU state and the power sampler use. The energy counter runs
    at a steady ``watts`` from the moment the module is made; ``unsupported`` queries raise
    NVMLError as NVML does on GPUs without them (the energy counter needs Volta or newer)."""

    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        pass

    def __init__(self, watts=250.0, unsupported=(), driver=True):
        super().__init__("pynvml")
        self.watts, self.unsupported, self.driver = watts, set(unsupported), driver
        self.started = time.perf_counter()
        self.inits = 0

    def _check(self, query):
        if query in self.unsupported:
            raise self.NVMLError("Not Supported")

    def nvmlInit(self):
        if not self.driver:
            raise self.NVMLError("Driver Not Loaded")
        self.inits += 1

    def nvmlShutdown(self):
        self.inits -= 1

    def nvmlDeviceGetHandleByIndex(self, index):
        return ("gpu", index)

    def nvmlDeviceGetClockInfo(self, handle, clock):
        self._check("clock")
        return {self.NVML_CLOCK_SM: 1980, self.NVML_CLOCK_MEM: 10501}[clock]

    def nvmlDeviceGetTemperature(self, handle, sensor):
        self._check("temperature")
        return 61

    def nvmlDeviceGetMemoryInfo(self, handle):
        self._check("memory")
        return types.SimpleNamespace(used=3 * 1024 ** 3, total=24 * 1024 ** 3, free=21 * 1024 ** 3)

    def nvmlDeviceGetPowerUsage(self, handle):
        self._check("power")
        return int(self.watts * 1000)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        self._check("energy")
        return int((time.perf_counter() - self.started) * self.watts * 1000) + 5_000_000


def test_a_reading_has_clocks_temperature_memory_power_and_energy(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    state = gpu_state.GpuState(0)
    reading = state.read()
    state.close()
    assert reading["sm_mhz"] == 1980 and reading["memory_mhz"] == 10501
    assert reading["temperature_c"] == 61
    assert reading["memory_used_mb"] == 3 * 1024
    assert reading["power_w"] == 250.0
    assert reading["energy_mj"] >= 5_000_000
    assert reading["time"] > 0


def test_queries_the_gpu_lacks_read_as_none(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(unsupported={"energy", "clock"}))
    reading = gpu_state.GpuState(0).read()
    assert reading["energy_mj"] is None and reading["sm_mhz"] is None and reading["memory_mhz"] is None
    assert reading["temperature_c"] == 61


def test_without_nvml_the_reason_is_given(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(driver=False))
    with pytest.raises(gpu_state.NvmlUnavailable, match="NVML: Driver Not Loaded"):
        gpu_state.GpuState(0)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    with pytest.raises(gpu_state.NvmlUnavailable, match="nvidia-ml-py is not installed"):
        gpu_state.GpuState(0)


def test_counter_energy():
    assert gpu_state.counter_energy_j({"energy_mj": 1000}, {"energy_mj": 3500}) == 2.5
    assert gpu_state.counter_energy_j({"energy_mj": None}, {"energy_mj": 3500}) is None
    assert gpu_state.counter_energy_j({"energy_mj": 9000}, {"energy_mj": 10}) is None  # driver reloaded
    assert gpu_state.counter_energy_j(None, {"energy_mj": 10}) is None


def measure_request(path, **extra):
    return {"protocol": 1, "backend": "onnxruntime", "device": "cpu", "model": {"format": "onnx", "path": path},
            "inputs": [{"name": "input", "shape": [2, 16], "dtype": "float32"}], "threads": 1,
            "settings": {"min_time_s": 0.3, "max_time_s": 1.0, "min_iterations": 5, "warmup_s": 0.01,
                         "target_ci": 0.05},
            "backend_options": {}, "allow_hooks": False, **extra}


def test_the_worker_reads_the_gpu_around_the_window_and_takes_energy_from_the_counter(tmp_path, monkeypatch):
    fake = FakeNvml(watts=200.0)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    result = worker.handle(measure_request(matmul_relu(str(tmp_path / "m.onnx")), gpu_state=True,
                                           power={"source": "nvml", "interval_ms": 20}))
    assert result["status"] == "ok", result["error"]
    start, end = result["gpu_state"]["start"], result["gpu_state"]["end"]
    assert start["sm_mhz"] == 1980 and end["temperature_c"] == 61
    window = result["power"]
    assert window["source"] == "nvml-energy-counter"
    assert window["energy_j"] == pytest.approx((end["energy_mj"] - start["energy_mj"]) / 1000.0)
    assert window["energy_j"] / window["window_s"] == pytest.approx(200.0, rel=0.05)
    assert fake.inits == 0  # NVML shut down as often as it was initialised


def test_without_an_energy_counter_the_sampled_power_stands(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(unsupported={"energy"}))
    result = worker.handle(measure_request(matmul_relu(str(tmp_path / "m.onnx")), gpu_state=True,
                                           power={"source": "nvml", "interval_ms": 20}))
    assert result["status"] == "ok", result["error"]
    assert result["power"]["source"] == "nvml"
    assert result["power"]["energy_j"] == pytest.approx(250.0 * result["power"]["window_s"])


def test_gpu_state_not_readable_is_a_reason_in_the_result(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(driver=False))
    result = worker.handle(measure_request(matmul_relu(str(tmp_path / "m.onnx")), gpu_state=True))
    assert result["status"] == "ok"
    assert result["gpu_state"] == {"unavailable": "NVML: Driver Not Loaded"}
    assert "gpu_state" not in worker.handle(measure_request(matmul_relu(str(tmp_path / "n.onnx"))))


def test_the_power_sampler_shares_nvml_opening(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(unsupported={"power"}))
    with pytest.raises(samplers.PowerUnavailable, match="power unavailable: NVML: Not Supported"):
        samplers.open_sampler("nvml", 100)

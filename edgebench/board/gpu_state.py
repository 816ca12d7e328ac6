"""A desktop NVIDIA GPU's state through NVML: clocks, temperature, memory, power and energy.

Read just outside the measurement window, like ``system.snapshot()``. The energy counter
(``nvmlDeviceGetTotalEnergyConsumption``, millijoules since the driver loaded, Volta and newer)
gives the window's energy exactly where sampled power only estimates it. A query the GPU does
not support reads as None. Jetsons have no NVML; their state comes from tegrastats.
Board-side: Python 3.8, standard library; pynvml (nvidia-ml-py) is imported when used.
"""

from __future__ import annotations

import time

MB = 1024.0 * 1024.0


class NvmlUnavailable(Exception):
    """NVML cannot be read here; the message says why."""


def open_nvml(index=0):
    """(the initialised pynvml module, the handle of GPU ``index``); NvmlUnavailable with the reason.

    NVML's GPU order can differ from CUDA's (``CUDA_DEVICE_ORDER``); index 0 is NVML's first."""
    try:
        import pynvml
    except ImportError:
        raise NvmlUnavailable("nvidia-ml-py is not installed (pip install edgebench[gpu])")
    try:
        pynvml.nvmlInit()
        return pynvml, pynvml.nvmlDeviceGetHandleByIndex(index)
    except pynvml.NVMLError as exc:
        raise NvmlUnavailable("NVML: %s" % exc)


class GpuState:
    """Readings of one GPU; open it once per worker, read it at the window's edges."""

    def __init__(self, index=0):
        self._nvml, self._handle = open_nvml(index)

    def read(self):
        nvml, handle = self._nvml, self._handle
        memory = self._query(nvml.nvmlDeviceGetMemoryInfo, handle)
        milliwatts = self._query(nvml.nvmlDeviceGetPowerUsage, handle)
        return {
            "time": time.perf_counter(),
            "sm_mhz": self._query(nvml.nvmlDeviceGetClockInfo, handle, nvml.NVML_CLOCK_SM),
            "memory_mhz": self._query(nvml.nvmlDeviceGetClockInfo, handle, nvml.NVML_CLOCK_MEM),
            "temperature_c": self._query(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU),
            "memory_used_mb": memory.used / MB if memory is not None else None,
            "power_w": milliwatts / 1000.0 if milliwatts is not None else None,
            "energy_mj": self._query(nvml.nvmlDeviceGetTotalEnergyConsumption, handle),
        }

    def close(self):
        self._nvml.nvmlShutdown()

    def _query(self, function, *args):
        try:
            return function(*args)
        except self._nvml.NVMLError:  # NotSupported on this GPU, or a transient failure
            return None


def counter_energy_j(start, end):
    """Joules between two readings' energy counters; None when either lacks the counter."""
    if not start or not end or start.get("energy_mj") is None or end.get("energy_mj") is None:
        return None
    if end["energy_mj"] < start["energy_mj"]:  # the driver reloaded in between
        return None
    return (end["energy_mj"] - start["energy_mj"]) / 1000.0

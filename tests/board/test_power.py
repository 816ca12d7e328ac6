"""Power samplers on their sysfs and API formats: RAPL counters (with wrap-around), NVML."""

import os
import sys
import threading
import time
import types

import pytest

from edgebench.board import samplers


def write_rapl(root, energy_uj, max_range_uj):
    domain = root / "sys" / "class" / "powercap" / "intel-rapl:0"
    domain.mkdir(parents=True, exist_ok=True)
    (domain / "name").write_text("package-0\n")
    (domain / "energy_uj").write_text(f"{int(energy_uj)}\n")
    (domain / "max_energy_range_uj").write_text(f"{int(max_range_uj)}\n")
    return domain


def test_rapl_power_across_a_counter_wrap(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_SYSROOT", str(tmp_path))
    max_range = 2_000_000  # wraps every 0.2 s at 10 W
    domain = write_rapl(tmp_path, 1_900_000, max_range)
    stop = threading.Event()

    def draw_10_watts():
        start, energy = time.perf_counter(), 1_900_000
        while not stop.is_set():
            energy = (1_900_000 + 10e6 * (time.perf_counter() - start)) % max_range
            # Replace, not rewrite: sysfs reads never see a half-written value.
            (domain / "energy_uj.new").write_text(f"{int(energy)}\n")
            os.replace(domain / "energy_uj.new", domain / "energy_uj")
            time.sleep(0.005)

    writer = threading.Thread(target=draw_10_watts)
    writer.start()
    sampler = samplers.open_sampler("rapl", interval_ms=50)
    time.sleep(1.0)
    sampler.stop()
    stop.set()
    writer.join()
    watts = sorted(r.watts for r in sampler.readings)
    assert len(watts) >= 10
    assert watts[len(watts) // 2] == pytest.approx(10.0, rel=0.15)
    assert min(watts) > 0  # no negative power where the counter wrapped


def test_rapl_missing_or_unreadable_is_a_reason_not_a_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_SYSROOT", str(tmp_path))
    with pytest.raises(samplers.PowerUnavailable, match="no Intel RAPL domains under /sys/class/powercap"):
        samplers.open_sampler("rapl", 100)
    domain = write_rapl(tmp_path, 0, 1000)
    (domain / "energy_uj").unlink()
    (domain / "energy_uj").mkdir()  # unreadable as a file, whatever the user's rights
    with pytest.raises(samplers.PowerUnavailable, match="energy_uj is not readable"):
        samplers.open_sampler("rapl", 100)


class FakeNvml(types.ModuleType):
    """The part of nvidia-ml-py's API the sampler uses, for machines without an NVIDIA GPU."""

    class NVMLError(Exception):
        pass

    def __init__(self, milliwatts=None):
        super().__init__("pynvml")
        self.milliwatts = milliwatts
        self.shut_down = False

    def nvmlInit(self):
        if self.milliwatts is None:
            raise self.NVMLError("Driver Not Loaded")

    def nvmlDeviceGetHandleByIndex(self, index):
        return ("gpu", index)

    def nvmlDeviceGetPowerUsage(self, handle):
        return self.milliwatts

    def nvmlShutdown(self):
        self.shut_down = True


def test_nvml_power_samples(monkeypatch):
    fake = FakeNvml(milliwatts=152_340)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    sampler = samplers.open_sampler("nvml", interval_ms=20)
    time.sleep(0.3)
    sampler.stop()
    assert len(sampler.readings) >= 5
    assert {r.watts for r in sampler.readings} == {152.34}
    assert fake.shut_down


def test_nvml_without_a_driver_is_a_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(milliwatts=None))
    with pytest.raises(samplers.PowerUnavailable, match="NVML: Driver Not Loaded"):
        samplers.open_sampler("nvml", 100)


def test_window_summary_takes_only_readings_inside_the_window():
    readings = [samplers.Reading(t, w, ram) for t, w, ram in [(0.5, 100.0, 1000), (1.0, 10.0, 1200), (1.5, 20.0, 1300),
                                                            (2.5, 100.0, 5000)]]
    summary = samplers.window_summary(readings, 1.0, 2.0)
    assert summary == {"samples": 2, "avg_power_w": 15.0, "peak_ram_used_mb": 1300, "details": []}


def test_unknown_source():
    with pytest.raises(samplers.PowerUnavailable, match="unknown power source 'psu'"):
        samplers.open_sampler("psu", 100)

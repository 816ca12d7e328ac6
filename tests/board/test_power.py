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
    # No negative power where the counter wrapped (every 0.2 s here). A zero is a writer thread that a
    # loaded machine (the tests run in parallel) did not schedule between two readings.
    assert min(watts) >= 0


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


class BlockingNvml(FakeNvml):
    """Reads from the sampler's thread last until NVML is shut down (or a second has passed), so a
    shutdown that does not wait for the thread lands in the middle of a read."""

    def __init__(self, read_s=1.0):
        super().__init__(milliwatts=100_000)
        self.read_s = read_s
        self.reading = threading.Event()
        self.shut = threading.Event()
        self.reads_in_progress = 0
        self.reads_at_shutdown = None

    def nvmlDeviceGetPowerUsage(self, handle):
        if threading.current_thread() is not threading.main_thread():  # not the check in _open
            self.reads_in_progress += 1
            self.reading.set()
            self.shut.wait(timeout=self.read_s)
            self.reads_in_progress -= 1
        return self.milliwatts

    def nvmlShutdown(self):
        self.reads_at_shutdown = self.reads_in_progress
        self.shut.set()
        super().nvmlShutdown()


def test_nvml_shuts_down_only_after_the_thread_has_stopped(monkeypatch):
    fake = BlockingNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    sampler = samplers.open_sampler("nvml", interval_ms=10)
    assert fake.reading.wait(timeout=30)
    sampler.stop()
    assert fake.reads_at_shutdown == 0
    assert not sampler._thread.is_alive() and fake.shut_down


def test_a_thread_that_does_not_stop_leaves_nvml_open(monkeypatch):
    fake = BlockingNvml(read_s=60)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(samplers, "JOIN_TIMEOUT_S", 0.05)
    sampler = samplers.open_sampler("nvml", interval_ms=10)
    assert fake.reading.wait(timeout=30)
    sampler.stop()
    assert not fake.shut_down
    assert sampler.problems == ["the nvml thread did not stop within 0.05 s; its source was left open"]
    fake.shut.set()  # let the read end
    sampler._thread.join()


def test_tegrastats_ends_the_process_then_joins_and_closes_the_pipe(tmp_path, monkeypatch):
    from fake_jetson import make_emulated_jetson

    for key, value in make_emulated_jetson(tmp_path).env.items():
        monkeypatch.setenv(key, value)
    sampler = samplers.open_sampler("tegrastats", interval_ms=20)
    deadline = time.monotonic() + 60
    while len(sampler.readings) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    sampler.stop()
    assert len(sampler.readings) >= 2 and sampler.readings[0].watts > 0
    assert not sampler._thread.is_alive()
    assert sampler._process.returncode is not None and sampler._process.stdout.closed


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

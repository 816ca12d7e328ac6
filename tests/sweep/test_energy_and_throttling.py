import pytest

from edgebench.sweep.energy import summarize_energy
from edgebench.sweep.throttle_check import assess


def window(energy_j, window_s, iterations, samples, peak_ram=None):
    return {"source": "tegrastats", "energy_j": energy_j, "window_s": window_s, "iterations": iterations,
            "samples": samples, "peak_ram_used_mb": peak_ram}


def test_energy_pools_the_windows_of_every_process():
    idle = {"avg_power_w": 5.0, "ram_used_mb": 2000}
    energy, device_mb, warnings = summarize_energy([window(20.0, 1.0, 100, 10, 2600), window(30.0, 1.5, 150, 15, 2500)],
                                                   idle)
    assert energy == {"source": "tegrastats", "samples": 25, "avg_power_w": pytest.approx(20.0), "idle_power_w": 5.0,
                      "mj_per_inference": pytest.approx(200.0), "dynamic_mj_per_inference": pytest.approx(150.0)}
    assert device_mb == 600
    assert warnings == []


def test_energy_without_readings_says_why():
    assert summarize_energy([{"unavailable": "tegrastats cannot be started"}], None) == (
        None, None, ["power not measured: tegrastats cannot be started"])
    assert summarize_energy([None], None) == (None, None, [])


def test_few_power_readings_are_flagged():
    _, _, warnings = summarize_energy([window(1.0, 0.2, 10, 2)], None)
    assert warnings and warnings[0].startswith("only 2 power reading(s)")


def test_not_monitored_is_null_not_false():
    assert assess([{"start": {"temperatures_c": {}, "cpu_mhz": [], "gpu_mhz": None}, "end": {}}], [], 85.0) == (None, [])


def test_clock_drop_under_load_is_throttling():
    snapshots = [{"start": {"temperatures_c": {"cpu": 60.0}, "cpu_mhz": [2000.0, 2000.0], "gpu_mhz": 1377.0},
                  "end": {"temperatures_c": {"cpu": 70.0}, "cpu_mhz": [2000.0, 2000.0], "gpu_mhz": 900.0}}]
    throttled, warnings = assess(snapshots, [], 85.0)
    assert throttled is True
    assert warnings == ["throttled: GPU clock fell from 1377 to 900 MHz during the measurement"]


def test_steady_clocks_and_cool_board_are_not_throttling():
    state = {"temperatures_c": {"cpu": 60.0}, "cpu_mhz": [2000.0], "gpu_mhz": 1377.0}
    assert assess([{"start": state, "end": state}], [state, state], 85.0) == (False, [])


def test_tegrastats_readings_during_the_window_count():
    cool = {"temperatures_c": {"GPU": 60.0, "PMIC": 100.0}, "cpu_mhz": [2265.0], "gpu_mhz": 1377}
    hot = {"temperatures_c": {"GPU": 86.5, "PMIC": 100.0}, "cpu_mhz": [2265.0], "gpu_mhz": 1377}
    throttled, warnings = assess([], [cool, hot], 85.0)
    assert throttled is True
    assert warnings == ["throttled: GPU reached 86.5 C, at or over the 85 C limit"]  # PMIC's fixed 100 C ignored


def test_a_clock_step_of_at_most_ten_percent_is_not_throttling():
    snapshots = [{"start": {"cpu_mhz": [2265.6, 2265.6], "gpu_mhz": 1377.0},
                  "end": {"cpu_mhz": [2188.8, 2265.6], "gpu_mhz": 1240.0}}]  # 1.7% and 9.9% lower
    assert assess(snapshots, [], 85.0) == (False, [])


def test_without_a_target_limit_the_default_limit_applies():
    def state(celsius):
        return {"temperatures_c": {"cpu": celsius, "PMIC": 100.0}, "cpu_mhz": [2000.0], "gpu_mhz": None}

    assert assess([{"start": state(60.0), "end": state(89.5)}], [], None) == (False, [])
    assert assess([{"start": state(60.0), "end": state(90.0)}], [], None) == (
        True, ["throttled: cpu reached 90.0 C, at or over the default 90 C limit"])

"""Summaries of whole tegrastats logs, built from the captured lines in tests/data/jetson."""

from pathlib import Path

import pytest

from edgebench.board import throttling
from edgebench.board.tegrastats_summary import LogError, summarize_log

JETSON = Path(__file__).resolve().parents[1] / "data" / "jetson"
ORIN_IDLE = (JETSON / "orin-jp5-root-idle.log").read_text().strip()  # 04-24-2023 00:01:24, 7132 mW in all
ORIN_DLA = (JETSON / "orin-dla0-busy.log").read_text().strip()
XAVIER_MAXN = (JETSON / "xavier-jp4-root-maxn-load.log").read_text().strip()  # no timestamp, 32850 mW


def write_log(tmp_path, *lines):
    path = tmp_path / "tegrastats.log"
    path.write_text("\n".join(lines) + "\n")
    return path


def orin_idle_at(second, **replacements):
    line = ORIN_IDLE.replace("00:01:24", f"00:01:{second:02d}")
    for old, new in replacements.items():
        line = line.replace(old, new)
    return line


def test_one_captured_line_summarized():
    summary = summarize_log(JETSON / "xavier-jp4-root-maxn-load.log")
    assert summary["sample_count"] == 1 and summary["line_count"] == 1
    assert summary["rails"]["GPU"] == {"mean_mw": 18401, "max_mw": 18401}
    assert summary["total_power"]["mean_mw"] == 32850
    assert summary["total_power"]["input_rails"] == ["GPU + CPU + SOC + CV + VDDRQ + SYS5V"]
    assert summary["energy"] is None
    assert any("no time span" in note for note in summary["notes"])
    assert summary["ram_used_mb"] == {"mean": 10881, "max": 10881}
    assert summary["gpu_load_pct"] == {"mean": 95, "max": 95}
    assert summary["emc_load_pct"] == {"mean": 55, "max": 55}
    assert summary["temperatures_max_c"]["GPU"] == 54.5
    # PMIC@100C is the driver's fixed value, not a reading: no temperature warning from it.
    assert summary["temperatures_max_c"]["PMIC"] == 100.0 and summary["throttling"] == []


def test_energy_is_the_trapezoid_over_timestamps(tmp_path):
    # 7132 mW at 0 s and 2 s, then VDD_GPU_SOC +1000 mW at 3 s: 2 * 7.132 + (7.132 + 8.132) / 2 J.
    path = write_log(tmp_path, orin_idle_at(24), orin_idle_at(26),
                     orin_idle_at(27, **{"VDD_GPU_SOC 2399mW": "VDD_GPU_SOC 3399mW"}))
    summary = summarize_log(path)
    assert summary["energy"]["duration_s"] == 3
    assert summary["energy"]["joules"] == pytest.approx(2 * 7.132 + (7.132 + 8.132) / 2)
    assert summary["energy"]["time_source"] == "timestamps"
    assert summary["total_power"]["max_mw"] == 8132
    assert summary["rails"]["VDD_GPU_SOC"] == {"mean_mw": pytest.approx(2732.333, abs=1e-3), "max_mw": 3399}
    assert summary["start"] == "2023-04-24T00:01:24" and summary["end"] == "2023-04-24T00:01:27"
    assert summary["offline_sensors"] == ["CV0", "CV1", "CV2", "GPU"]
    assert "GPU" not in summary["temperatures_max_c"]


def test_without_timestamps_energy_uses_the_interval_and_says_which(tmp_path):
    path = write_log(tmp_path, XAVIER_MAXN, XAVIER_MAXN, XAVIER_MAXN)
    assumed = summarize_log(path)["energy"]
    assert assumed["duration_s"] == 2 and assumed["joules"] == pytest.approx(2 * 32.85)
    assert "default interval, 1000 ms, assumed" in assumed["time_source"]
    given = summarize_log(path, interval_ms=250)["energy"]
    assert given["duration_s"] == 0.5 and given["joules"] == pytest.approx(0.5 * 32.85)
    assert given["time_source"] == "the interval given, 250 ms"


def test_bad_lines_are_listed_and_the_rest_summarized(tmp_path):
    path = write_log(tmp_path, orin_idle_at(24), "tegrastats: permission denied", orin_idle_at(25) + " FAN 42rpm")
    summary = summarize_log(path)
    assert summary["sample_count"] == 2 and summary["line_count"] == 3
    assert summary["unparsed_lines"] == [{"line_number": 2, "text": "tegrastats: permission denied"}]
    assert summary["unknown_tokens"] == {"FAN": 1, "42rpm": 1}


def test_gpu_clock_falling_under_high_load_is_flagged(tmp_path):
    path = write_log(tmp_path, orin_idle_at(24, **{"GR3D_FREQ 0%@0": "GR3D_FREQ 99%@1300"}),
                     orin_idle_at(25, **{"GR3D_FREQ 0%@0": "GR3D_FREQ 97%@[900,900]"}),
                     orin_idle_at(26, **{"GR3D_FREQ 0%@0": "GR3D_FREQ 98%@[700,700]"}))
    (event,) = summarize_log(path)["throttling"]
    assert event == {"kind": "clock_drop", "unit": "GPU", "count": 2, "first_line": 2,
                     "first": "1300 -> 900 MHz at 97% load"}


def test_clock_falling_as_load_falls_is_not_throttling(tmp_path):
    path = write_log(tmp_path, orin_idle_at(24, **{"GR3D_FREQ 0%@0": "GR3D_FREQ 99%@1300"}),
                     orin_idle_at(25, **{"GR3D_FREQ 0%@0": "GR3D_FREQ 10%@300"}))
    assert summarize_log(path)["throttling"] == []


def test_a_clock_step_of_at_most_ten_percent_under_load_is_not_throttling(tmp_path):
    # The rule a record uses: more than 10% (1300 -> 1173 MHz is 9.8% lower).
    path = write_log(tmp_path, orin_idle_at(24, **{"GR3D_FREQ 0%@0": "GR3D_FREQ 99%@1300"}),
                     orin_idle_at(25, **{"GR3D_FREQ 0%@0": "GR3D_FREQ 99%@1173"}))
    summary = summarize_log(path)
    assert summary["throttling"] == []
    assert throttling.describe() in summary["notes"]


def test_cpu_core_clock_falling_under_full_load_is_flagged(tmp_path):
    path = write_log(tmp_path, ORIN_DLA, ORIN_DLA.replace("[90%@2201,100%@2201,", "[90%@2201,100%@1497,"))
    (event,) = summarize_log(path)["throttling"]
    assert (event["unit"], event["first_line"], event["first"]) == ("CPU1", 2, "2201 -> 1497 MHz at 100% load")


def test_temperature_at_the_limit_is_flagged_with_its_hottest_reading(tmp_path):
    path = write_log(tmp_path, orin_idle_at(24, **{"tj@42.593C": "tj@90C"}), orin_idle_at(25),
                     orin_idle_at(26, **{"tj@42.593C": "tj@96.5C"}))
    summary = summarize_log(path)
    assert summary["throttling"] == [{"kind": "temperature", "sensor": "tj", "count": 2, "first_line": 1,
                                      "max_c": 96.5}]
    assert summary["temperatures_max_c"]["tj"] == 96.5


def test_a_known_limit_replaces_the_default(tmp_path):
    path = write_log(tmp_path, orin_idle_at(24, **{"tj@42.593C": "tj@86C"}))
    assert summarize_log(path)["throttling"] == []
    summary = summarize_log(path, limit_c=85.0)
    assert summary["throttling"] == [{"kind": "temperature", "sensor": "tj", "count": 1, "first_line": 1,
                                      "max_c": 86.0}]
    assert throttling.describe(85.0) in summary["notes"] and "at or above 85 C (the target's limit" in \
        throttling.describe(85.0)


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("", "is empty"),
    ("\n  \n", "is empty"),
    ("hello\nworld\n", "no tegrastats line"),
])
def test_unusable_files_are_usage_errors(tmp_path, content, message):
    path = tmp_path / "t.log"
    if content is not None:
        path.write_text(content)
    with pytest.raises(LogError, match=message):
        summarize_log(path)


def test_interval_must_be_positive():
    with pytest.raises(LogError, match="must be positive"):
        summarize_log(JETSON / "orin-dla0-busy.log", interval_ms=0)

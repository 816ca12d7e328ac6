"""tegrastats lines from every JetPack: the captured files in tests/data/jetson and the JetPack 6/7
lines synthesized from the README's description (synthesized-jp6-jp7.log)."""

from datetime import datetime
from pathlib import Path

import pytest

from edgebench.board.tegrastats import (
    TegrastatsParseError,
    TegrastatsReader,
    input_rails,
    parse_line,
    total_power_mw,
)

JETSON = Path(__file__).resolve().parents[1] / "data" / "jetson"


def captured(name):
    """The one line of a captured log."""
    (line,) = (JETSON / name).read_text().splitlines()
    return parse_line(line)


def synthesized():
    """The synthesized lines, keyed by the '# key:' note above each."""
    lines, key = {}, None
    for line in (JETSON / "synthesized-jp6-jp7.log").read_text().splitlines():
        if line.startswith("# ") and ":" in line.split()[1]:
            key = line.split()[1].rstrip(":")
        elif not line.startswith("#"):
            lines[key] = line
    return lines


def test_xavier_root_maxn_under_load():
    s = captured("xavier-jp4-root-maxn-load.log")
    assert s.timestamp is None
    assert (s.ram_used_mb, s.ram_total_mb, s.swap_used_mb, s.swap_total_mb) == (10881, 31919, 0, 15959)
    assert s.cpus[0] == (17, 1190) and s.cpus[7] == (15, 1574) and len(s.cpus) == 8
    assert s.engines["GR3D_FREQ"] == {"load": 95, "freq_mhz": 1377, "on": True}
    assert s.engines["EMC_FREQ"] == {"load": 55, "freq_mhz": 2133, "on": True}
    assert s.engines["APE"] == {"load": None, "freq_mhz": 150, "on": True}
    assert s.engines["MTS_FG"]["load"] == 0 and s.engines["MTS_BG"]["load"] == 10
    assert s.temperatures["GPU"] == 54.5 and s.temperatures["thermal"] == 49.45
    assert len(s.temperatures) == 8 and s.offline_sensors == []
    assert s.rails["GPU"] == {"current_mw": 18401, "average_mw": 18525, "max_mw": None}
    assert s.rails["CPU"]["current_mw"] == 2301  # a rail named CPU, not the core list
    assert s.unparsed == []


def test_xavier_total_is_the_sum_of_its_six_rails():
    s = captured("xavier-jp4-root-maxn-load.log")
    assert input_rails(s) == ["GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"]
    assert total_power_mw(s) == 18401 + 2301 + 4602 + 0 + 2914 + 4632
    # The README's "sum of rails, mode 0: 32988 mW" is the sum of this line's averages.
    assert sum(rail["average_mw"] for rail in s.rails.values()) == 32988


def test_xavier_without_root_has_loads_without_clocks():
    s = captured("xavier-jp4-nonroot-idle.log")
    assert s.engines == {"EMC_FREQ": {"load": 0, "freq_mhz": None, "on": True},
                         "GR3D_FREQ": {"load": 0, "freq_mhz": None, "on": True}}
    assert s.rails["SYS5V"] == {"current_mw": 3306, "average_mw": 3306, "max_mw": None}
    assert (s.ram_used_mb, s.swap_used_mb) == (14700, 898)
    assert s.temperatures["PMIC"] == 100.0 and s.unparsed == []


def test_orin_idle_offline_sensors_nc_rails_and_timestamp():
    s = captured("orin-jp5-root-idle.log")
    assert s.timestamp == datetime(2023, 4, 24, 0, 1, 24)
    assert s.offline_sensors == ["CV0", "CV1", "GPU", "CV2"]
    assert "GPU" not in s.temperatures and s.temperatures["CPU"] == 42.593
    assert list(s.rails) == ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"]  # no NC
    assert s.engines["GR3D2_FREQ"] == {"load": 0, "freq_mhz": 0, "on": True}
    assert s.cpus == [(0, 729)] * 12
    assert total_power_mw(s) == 2399 + 400 + 4032 + 301
    assert s.unparsed == []


def test_orin_dla_busy_gpu_clock_per_gpc_and_dla_clock():
    s = captured("orin-dla0-busy.log")
    assert s.engines["GR3D_FREQ"] == {"load": 14, "freq_mhz": [407, 407], "on": True}
    assert s.engines["NVDLA0_FREQ"] == {"load": None, "freq_mhz": 1600, "on": True}
    assert s.engines["VIC_FREQ"]["freq_mhz"] == 115
    assert s.cpus[0] == (90, 2201) and s.cpus[11] == (100, 2201)
    assert s.rails["VDD_CPU_CV"] == {"current_mw": 14312, "average_mw": 12415, "max_mw": None}
    assert s.temperatures["tj"] == 77.281 and s.offline_sensors == []
    assert s.timestamp == datetime(2025, 11, 21, 8, 49, 48)


def test_xavier_jp5_line_without_its_ram_prefix():
    s = captured("xavier-jp5-tail-mw.log")
    assert s.ram_used_mb is None and s.ram_total_mb is None and s.swap_used_mb is None
    assert s.cpus[1] == (1, 1190) and s.cpus[3] == (0, 1189) and len(s.cpus) == 8
    assert s.rails["SOC"] == {"current_mw": 1245, "average_mw": 1245, "max_mw": None}
    assert s.engines["GR3D_FREQ"]["freq_mhz"] == 114 and s.temperatures["PMIC"] == 50.0
    assert s.unparsed == []


def test_synthesized_jp6_lowercase_sensors_engines_off_and_cores_off():
    s = parse_line(synthesized()["jp6-agx-orin"])
    assert s.temperatures["cpu"] == 45.375 and s.temperatures["soc0"] == 41.812 and s.temperatures["tj"] == 45.375
    assert s.engines["NVDLA0"] == {"load": None, "freq_mhz": None, "on": False}
    assert s.engines["PVA0_FREQ"]["on"] is False and s.engines["NVENC"]["on"] is False
    assert s.engines["GR3D_FREQ"]["freq_mhz"] == [305, 305]
    assert s.cpus[:2] == [(2, 729), (1, 729)] and s.cpus[8:] == [None] * 4
    assert "NC" not in s.rails and len(s.rails) == 4
    assert s.unparsed == []


def test_synthesized_jp6_board_with_vdd_in_totals_that_rail_alone():
    s = parse_line(synthesized()["jp6-orin-nano"])
    assert input_rails(s) == ["VDD_IN"]
    assert total_power_mw(s) == 7312
    assert s.engines["GR3D_FREQ"]["freq_mhz"] == [624]


def test_synthesized_jp7_current_over_max_and_instant_average_max():
    s = parse_line(synthesized()["jp7"])
    assert s.temperatures == {"cpu": 52.9, "soc0": 49.2, "tj": 53.4}
    assert s.rails["VDD_GPU_SOC"] == {"current_mw": 5139, "average_mw": 5139, "max_mw": 5139}
    assert s.rails["VDD_CPU_CV"] == {"current_mw": 2410, "average_mw": 2388, "max_mw": 2650}
    assert total_power_mw(s) == 5139 + 2410 + 4120
    assert s.unparsed == []


def test_older_core_list_with_one_clock_for_all_cores():
    s = parse_line("RAM 1000/3983MB (lfb 1x4MB) CPU [2%,1%,off,off]@102 EMC_FREQ 3%@1600")
    assert s.cpus == [(2, 102), (1, 102), None, None]


def test_unknown_token_is_kept_not_guessed():
    s = parse_line("RAM 10881/31919MB (lfb 4230x4MB) FAN 42rpm GR3D_FREQ 95%@1377 GPU 18401/18525")
    assert s.unparsed == ["FAN", "42rpm"]
    assert "FAN" not in s.engines and "FAN" not in s.rails
    assert s.engines["GR3D_FREQ"]["load"] == 95 and s.rails["GPU"]["current_mw"] == 18401


def test_field_with_unknown_unit_is_unparsed():
    s = parse_line("RAM 10/31GB GR3D_FREQ 95%@1377")
    assert s.ram_used_mb is None
    assert s.unparsed == ["RAM", "10/31GB"]


@pytest.mark.parametrize("line", ["", "hello world", "Segmentation fault (core dumped)",
                                  "11-21-2025 08:49:48", "NC 0mW/0mW"])
def test_line_without_any_field_raises_with_the_line(line):
    with pytest.raises(TegrastatsParseError) as raised:
        parse_line(line)
    assert raised.value.line == line


def test_reader_goes_on_past_bad_lines_and_numbers_them():
    lines = [(JETSON / "orin-jp5-root-idle.log").read_text(), "garbage here\n", "\n",
             (JETSON / "orin-dla0-busy.log").read_text()]
    reader = TegrastatsReader(lines)
    seen = [(reader.line_num, sample.engines["GR3D_FREQ"]["load"]) for sample in reader]
    assert seen == [(1, 0), (4, 14)]
    assert [(e.line_number, e.line) for e in reader.errors] == [(2, "garbage here")]


def test_reader_reads_a_pipe_line_by_line():
    def pipe():
        yield "RAM 1/2MB CPU [1%@100]\n"
        raise RuntimeError("read past the first sample")

    assert next(iter(TegrastatsReader(pipe()))).ram_used_mb == 1

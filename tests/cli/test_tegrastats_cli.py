"""`edgebench tegrastats LOGFILE`, run as a user would."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

JETSON = Path(__file__).resolve().parents[1] / "data" / "jetson"
ORIN_IDLE = (JETSON / "orin-jp5-root-idle.log").read_text().strip()


def edgebench(*args):
    return subprocess.run([sys.executable, "-m", "edgebench", "tegrastats", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_table_of_a_captured_log():
    proc = edgebench(JETSON / "xavier-jp4-root-maxn-load.log")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert ["GPU", "18401", "18401"] in rows and ["total", "32850", "32850"] in rows  # rails, mW
    assert ["GPU", "54.5"] in rows and ["Tdiode", "53.25"] in rows  # temperatures, °C
    assert "GPU (GR3D) load: mean 95%, max 95%" in proc.stdout
    assert "RAM used: mean 10881 MB, max 10881 MB" in proc.stdout
    assert proc.stderr == ""


def test_json_with_bad_lines_listed_in_it(tmp_path):
    log = tmp_path / "t.log"
    log.write_text(ORIN_IDLE + "\n[garbage]\n" + ORIN_IDLE.replace("00:01:24", "00:01:26") + "\n")
    proc = edgebench(log, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["unparsed_lines"] == [{"line_number": 2, "text": "[garbage]"}]
    assert summary["energy"]["joules"] == pytest.approx(2 * 7.132)
    assert summary["offline_sensors"] == ["CV0", "CV1", "CV2", "GPU"]
    assert summary["rails"]["VDDQ_VDD2_1V8AO"] == {"mean_mw": 301, "max_mw": 301}
    assert proc.stderr == ""


def test_table_mode_warns_about_bad_lines_on_stderr(tmp_path):
    log = tmp_path / "t.log"
    log.write_text(ORIN_IDLE + "\n[garbage]\n")
    proc = edgebench(log)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "warning: line 2 is not tegrastats output, skipped: [garbage]"
    assert "[garbage]" not in proc.stdout
    assert "offline sensors (-256C): CV0, CV1, CV2, GPU" in proc.stdout


def test_interval_is_used_without_timestamps(tmp_path):
    line = (JETSON / "xavier-jp5-tail-mw.log").read_text().strip()  # 5258 mW
    log = tmp_path / "t.log"
    log.write_text(f"{line}\n{line}\n")
    proc = edgebench(log, "--json", "--interval-ms", "500")
    energy = json.loads(proc.stdout)["energy"]
    assert energy == {"joules": pytest.approx(0.5 * 5.258), "duration_s": 0.5,
                      "time_source": "the interval given, 500 ms"}


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("", "is empty"),
    ("not tegrastats\n", "no tegrastats line"),
])
def test_unusable_file_is_one_line_and_exit_2(tmp_path, content, message):
    log = tmp_path / "t.log"
    if content is not None:
        log.write_text(content)
    proc = edgebench(log)
    assert proc.returncode == 2
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("edgebench: error: ") and message in line
    assert "Traceback" not in proc.stderr

"""benchmarks/pairing_blocks.py's table from measurements already made (the script itself measures
for several minutes; `--quick` is its smoke run)."""

from __future__ import annotations

import math

from benchmark_scripts import load

pairing_blocks = load("pairing_blocks")


def measurement(case: str, block: float, ratio: float, half: float = 0.02, sd: float = 0.12) -> dict:
    return {"case": case, "block_s": block, "repeat": 0, "rounds": round(3 / block), "ratio": ratio,
            "ci95": [ratio * math.exp(-half), ratio * math.exp(half)], "half_width": half, "round_sd": sd,
            "samples_per_block": 30 * block / 0.1, "wall_s": 8.0}


def test_each_block_length_gets_its_row_from_its_own_measurements(tmp_path):
    results = {
        "environment": {"date": "2026-11-30", "cpu": "test CPU", "cpu_count": 2, "versions": {}},
        "settings": {"model": "m", "input_shape": "3x8x8", "threads": 1, "seconds": 3.0, "repeats": 2,
                     "slowed_convs": 7, "quick": False, "block_times": [0.1, 0.01]},
        "load_average": {"start": 0.2, "end": 0.3}, "interrupted": True,
        "measurements": [measurement("A/A", 0.1, 1.0, half=0.05), measurement("slowed", 0.1, 1.05),
                         measurement("A/A", 0.1, 0.98, half=0.04), measurement("A/A", 0.01, 1.01, half=0.015)],
    }
    table = pairing_blocks.write_table(tmp_path, "pairing_blocks", pairing_blocks._markdown(results), results)
    text = table.read_text()
    assert "**Interrupted**" in text
    # 0.1 s: two A/A measurements (half-widths 5% and 4%: median 4.5%), their logs' SD, one slowed ratio
    spread = abs(math.log(0.98)) / math.sqrt(2)
    assert f"| 0.1 s | 30 | 30 | 12.0% | ±4.5% | {spread:.2%} | 1.000, 0.980 | 1.050 | 8.0 |" in text
    # 0.01 s: one A/A measurement, so no spread between processes and no slowed ratio yet
    assert "| 0.01 s | 300 | 3 | 12.0% | ±1.5% | - | 1.010 | - | 8.0 |" in text

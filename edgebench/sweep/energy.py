"""Energy per inference from the power readings of each worker's measurement window.

Energy is per inference call (one batch). The idle baseline is sampled once before the run;
dynamic energy is what the model costs above it. On a Jetson, memory is unified: the device
memory of a measurement is the rise in RAM used over idle.
"""

from __future__ import annotations

from typing import Optional

# Fewer readings than this in the windows make the average power a rough figure.
MIN_POWER_SAMPLES = 5


def summarize_energy(windows: list[Optional[dict]], idle: Optional[dict]) -> tuple[Optional[dict], Optional[float], list[str]]:
    """(the record's ``energy``, device memory in MB or None, warnings) from the workers'
    ``power`` results and the idle baseline."""
    measured = [w for w in windows if w and "energy_j" in w]
    if not measured:
        reasons = [w["unavailable"] for w in windows if w and w.get("unavailable")]
        return None, None, [f"power not measured: {reasons[0]}"] if reasons else []
    energy_j = sum(w["energy_j"] for w in measured)
    window_s = sum(w["window_s"] for w in measured)
    iterations = sum(w["iterations"] for w in measured)
    samples = sum(w["samples"] for w in measured)
    avg_power_w = energy_j / window_s
    idle_w = idle["avg_power_w"] if idle else None
    energy = {
        "source": measured[0]["source"],
        "samples": samples,
        "avg_power_w": avg_power_w,
        "idle_power_w": idle_w,
        "mj_per_inference": energy_j * 1000.0 / iterations,
        "dynamic_mj_per_inference": (avg_power_w - idle_w) * window_s * 1000.0 / iterations
        if idle_w is not None else None,
    }
    warnings = []
    if samples < MIN_POWER_SAMPLES:
        warnings.append(f"only {samples} power reading(s) in the measurement window: the energy is rough; "
                        "raise --min-time or lower --power-interval")
    return energy, _device_memory(measured, idle), warnings


def _device_memory(measured: list[dict], idle: Optional[dict]) -> Optional[float]:
    peaks = [w["peak_ram_used_mb"] for w in measured if w.get("peak_ram_used_mb") is not None]
    if not peaks or not idle or idle.get("ram_used_mb") is None:
        return None
    return max(peaks) - idle["ram_used_mb"]

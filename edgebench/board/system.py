"""Reads of the machine's state from /proc, /sys and /etc, through a redirectable root.

Every read goes through ``EDGEBENCH_SYSROOT`` (default ``/``), so tests and anyone without a
board can stand up an emulated Jetson in a directory. A file that is missing or unreadable
degrades that reading to None; it never fails a run. Board-side: Python 3.8, standard library.
"""

from __future__ import annotations

import glob
import os

SYSROOT_VARIABLE = "EDGEBENCH_SYSROOT"
# devfreq device names of Jetson GPUs: Xavier (gv11b), Orin (ga10b), and generic "gpu".
_GPU_DEVFREQ_NAMES = ("gv11b", "ga10b", "gpu")


def sysroot():
    return os.environ.get(SYSROOT_VARIABLE) or "/"


def path(relative):
    """``relative`` (an absolute system path such as /proc/cpuinfo) under the system root."""
    return os.path.join(sysroot(), relative.lstrip("/"))


def read_text(relative):
    try:
        with open(path(relative), "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return None


def read_number(relative):
    text = read_text(relative)
    try:
        return float(text.strip()) if text is not None else None
    except ValueError:
        return None


def jetson_release():
    """The first line of /etc/nv_tegra_release (e.g. ``# R35 (release), REVISION: 4.1``), or None."""
    text = read_text("/etc/nv_tegra_release")
    return text.strip().splitlines()[0].lstrip("# ").strip() if text and text.strip() else None


def device_tree_model():
    """/proc/device-tree/model without its trailing NUL, or None."""
    text = read_text("/proc/device-tree/model")
    return text.strip("\x00\n ") if text else None


def device_tree_compatible():
    """/proc/device-tree/compatible as a list (the file is NUL-separated); empty when unreadable."""
    return [entry.strip() for entry in (read_text("/proc/device-tree/compatible") or "").split("\x00")
            if entry.strip()]


def soc_id():
    """The SoC's chip id from /sys/devices/soc0/soc_id (25 on a Tegra194, 35 on a Tegra234), or None."""
    number = read_number("/sys/devices/soc0/soc_id")
    return int(number) if number is not None else None


def device_tree_serial():
    """/proc/device-tree/serial-number (a Jetson's board serial) without its trailing NUL, or None."""
    text = read_text("/proc/device-tree/serial-number")
    return (text.strip("\x00\n ") or None) if text else None


def nvidia_gpu_model():
    """The first NVIDIA GPU's "Model:" line from /proc/driver/nvidia/gpus/*/information (a desktop
    or server driver), or None."""
    for information in sorted(glob.glob(path("/proc/driver/nvidia/gpus/*/information"))):
        text = read_text("/" + os.path.relpath(information, sysroot())) or ""
        for line in text.splitlines():
            if line.startswith("Model:"):
                return line.split(":", 1)[1].strip() or None
    return None


def temperatures_c():
    """Thermal zone type -> degrees C. Offline sensors (Jetson reports -256 C) are left out."""
    readings = {}
    for zone in sorted(glob.glob(path("/sys/class/thermal/thermal_zone*"))):
        relative = "/" + os.path.relpath(zone, sysroot())
        name = (read_text(relative + "/type") or os.path.basename(zone)).strip()
        millidegrees = read_number(relative + "/temp")
        if millidegrees is not None and millidegrees > -200000:
            readings[name] = millidegrees / 1000.0
    return readings


def cpu_frequencies_mhz():
    """Current frequency of each online CPU that exposes cpufreq, in MHz."""
    frequencies = []
    for cpu in sorted(glob.glob(path("/sys/devices/system/cpu/cpu[0-9]*")), key=_cpu_index):
        relative = "/" + os.path.relpath(cpu, sysroot())
        khz = read_number(relative + "/cpufreq/scaling_cur_freq")
        if khz is not None:
            frequencies.append(khz / 1000.0)
    return frequencies


def gpu_frequency_mhz():
    """The integrated GPU's current frequency (Jetson devfreq), or None."""
    for device in sorted(glob.glob(path("/sys/class/devfreq/*"))):
        if any(name in os.path.basename(device) for name in _GPU_DEVFREQ_NAMES):
            hz = read_number("/" + os.path.relpath(device, sysroot()) + "/cur_freq")
            if hz is not None:
                return hz / 1e6
    return None


def snapshot():
    """Temperatures and clocks now, for the before/after readings of a measurement."""
    return {
        "temperatures_c": temperatures_c(),
        "cpu_mhz": cpu_frequencies_mhz(),
        "gpu_mhz": gpu_frequency_mhz(),
    }


def _cpu_index(cpu_path):
    return int(os.path.basename(cpu_path)[3:])

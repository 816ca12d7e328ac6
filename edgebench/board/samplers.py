"""Power sampled alongside a measurement window: tegrastats, jtop, Intel RAPL, NVML.

A sampler runs in a background thread from before the timed loop to after it and keeps
``(time, watts, ram_used_mb)`` readings on the ``time.perf_counter`` clock, the harness's clock,
so the readings inside the window can be picked out exactly. Board-side: Python 3.8, standard
library; each source's library (jtop, pynvml) is imported only when that source is used.

Stopping is ordered so the thread never reads a closed source: ask the thread to stop, wake it
where it blocks (tegrastats: end the process, whose pipe the thread reads), join it, and only
then release the source (NVML shutdown, jtop close, the pipe closed).
"""

from __future__ import annotations

import glob
import os
import subprocess
import threading
import time

from edgebench.board import gpu_state, system
from edgebench.board.tegrastats import TegrastatsParseError, parse_line, total_power_mw

SOURCES = ("tegrastats", "jtop", "rapl", "nvml")
# A read blocked longer than this (a hung driver) leaves the source open rather than closed under it.
JOIN_TIMEOUT_S = 5.0


class PowerUnavailable(Exception):
    """The source cannot be read here; the message says why (recorded, never fatal)."""


class Reading:
    __slots__ = ("time", "watts", "ram_used_mb", "detail")

    def __init__(self, time_s, watts, ram_used_mb=None, detail=None):
        self.time = time_s
        self.watts = watts
        self.ram_used_mb = ram_used_mb
        self.detail = detail


class Sampler:
    source = ""

    def __init__(self, interval_ms=100):
        self.interval_s = interval_ms / 1000.0
        self.readings = []
        self.problems = []
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._open()
        self._thread = threading.Thread(target=self._run, name="edgebench-power", daemon=True)
        self._thread.start()

    def stop(self):
        """Stop and join the thread, then release the source; readings stay in ``readings``."""
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                self.problems.append("the %s thread did not stop within %g s; its source was left open"
                                     % (self.source, JOIN_TIMEOUT_S))
                return
        self._close()

    def _open(self):
        """Check the source can be read; raise PowerUnavailable with the reason if not."""

    def _wake(self):
        """Unblock a thread waiting on the source; the stop event wakes the polling ones."""

    def _close(self):
        """Release the source; called once the thread has ended."""

    def _run(self):
        while not self._stop.wait(self.interval_s):
            reading = self._read()
            if reading is not None:
                self.readings.append(reading)

    def _read(self):
        raise NotImplementedError


class TegrastatsSampler(Sampler):
    """``tegrastats --interval MS``: one line per interval, parsed as it comes."""

    source = "tegrastats"

    def _open(self):
        try:
            self._process = subprocess.Popen(
                ["tegrastats", "--interval", str(int(self.interval_s * 1000))],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                universal_newlines=True, bufsize=1)
        except OSError as exc:
            raise PowerUnavailable("tegrastats cannot be started: %s" % exc)

    def _wake(self):
        # The thread blocks reading tegrastats' pipe: ending the process ends the pipe.
        self._process.terminate()
        try:
            self._process.wait(timeout=JOIN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _close(self):
        self._process.stdout.close()

    def _run(self):
        for line in self._process.stdout:
            now = time.perf_counter()
            if not line.strip():
                continue
            try:
                sample = parse_line(line)
            except TegrastatsParseError as exc:
                self.problems.append(str(exc))
                continue
            milliwatts = total_power_mw(sample)
            if milliwatts is None:
                self.problems.append("tegrastats shows no power rails (run as root on Orin)")
                continue
            self.readings.append(Reading(now, milliwatts / 1000.0, sample.ram_used_mb, sample))


class RaplSampler(Sampler):
    """Intel RAPL package energy counters under /sys/class/powercap, with wrap-around."""

    source = "rapl"

    def _open(self):
        self._domains = []
        for domain in sorted(glob.glob(system.path("/sys/class/powercap/intel-rapl:[0-9]"))):
            relative = "/" + os.path.relpath(domain, system.sysroot())
            energy = system.read_number(relative + "/energy_uj")
            limit = system.read_number(relative + "/max_energy_range_uj")
            if energy is None or limit is None:
                raise PowerUnavailable("power unavailable: %s/energy_uj is not readable (it needs root on "
                                       "most kernels)" % relative)
            self._domains.append((relative, limit))
        if not self._domains:
            raise PowerUnavailable("power unavailable: no Intel RAPL domains under /sys/class/powercap")
        self._last = (time.perf_counter(), self._counters())

    def _counters(self):
        return [system.read_number(relative + "/energy_uj") for relative, _ in self._domains]

    def _read(self):
        now, counters = time.perf_counter(), self._counters()
        then, previous = self._last
        self._last = (now, counters)
        if None in counters:
            self.problems.append("a RAPL counter became unreadable")
            return None
        joules = sum(_counter_delta(old, new, limit) for old, new, (_, limit) in
                     zip(previous, counters, self._domains)) / 1e6
        # The power over the interval is attributed to its midpoint.
        return Reading((then + now) / 2.0, joules / (now - then))


class NvmlSampler(Sampler):
    """NVML board power of GPU 0 (``nvmlDeviceGetPowerUsage``, milliwatts)."""

    source = "nvml"

    def _open(self):
        try:
            nvml, handle = gpu_state.open_nvml(0)
        except gpu_state.NvmlUnavailable as exc:
            raise PowerUnavailable("power unavailable: %s" % exc)
        try:
            nvml.nvmlDeviceGetPowerUsage(handle)
        except nvml.NVMLError as exc:
            raise PowerUnavailable("power unavailable: NVML: %s" % exc)
        self._nvml, self._handle = nvml, handle

    def _close(self):
        self._nvml.nvmlShutdown()

    def _read(self):
        milliwatts = self._nvml.nvmlDeviceGetPowerUsage(self._handle)
        return Reading(time.perf_counter(), milliwatts / 1000.0)


class JtopSampler(Sampler):
    """jetson-stats' jtop service (``jtop.power['tot']['power']``, milliwatts)."""

    source = "jtop"

    def _open(self):
        try:
            from jtop import jtop
        except ImportError:
            raise PowerUnavailable("power unavailable: jetson-stats (jtop) is not installed")
        self._jtop = jtop(interval=self.interval_s)
        try:
            self._jtop.start()
        except Exception as exc:  # jtop raises JtopException when its service is not running
            raise PowerUnavailable("power unavailable: the jtop service is not running: %s" % exc)

    def _close(self):
        self._jtop.close()

    def _read(self):
        total = (self._jtop.power or {}).get("tot") or {}
        if "power" not in total:
            return None
        memory = (self._jtop.memory or {}).get("RAM") or {}
        used_kb = memory.get("used")
        return Reading(time.perf_counter(), total["power"] / 1000.0,
                       used_kb / 1024.0 if used_kb is not None else None)


SAMPLERS = {cls.source: cls for cls in (TegrastatsSampler, JtopSampler, RaplSampler, NvmlSampler)}


def open_sampler(source, interval_ms):
    """A started sampler for ``source``; PowerUnavailable with the reason when it cannot run."""
    if source not in SAMPLERS:
        raise PowerUnavailable("unknown power source %r (known: %s)" % (source, ", ".join(SOURCES)))
    sampler = SAMPLERS[source](interval_ms)
    sampler.start()
    return sampler


def window_summary(readings, start, end):
    """Readings inside [start, end]: count, mean watts, peak RAM used."""
    inside = [r for r in readings if start <= r.time <= end]
    ram = [r.ram_used_mb for r in inside if r.ram_used_mb is not None]
    return {
        "samples": len(inside),
        "avg_power_w": sum(r.watts for r in inside) / len(inside) if inside else None,
        "peak_ram_used_mb": max(ram) if ram else None,
        "details": [r.detail for r in inside if r.detail is not None],
    }


def _counter_delta(old, new, limit):
    """Energy between two readings of a counter that wraps at ``limit``."""
    return new - old if new >= old else new + limit - old

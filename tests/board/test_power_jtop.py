"""The jtop sampler against jetson-stats' documented Python API (``jtop.jtop``), faked: the
jtop service exists only on a Jetson."""

import sys
import threading
import time
import types

import pytest

from edgebench.board import samplers


def fake_jtop_module(service_running=True):
    module = types.ModuleType("jtop")

    class JtopException(Exception):
        pass

    class jtop:  # noqa: N801 - the library's own name
        def __init__(self, interval=1.0):
            self.interval = interval
            self.closed = False
            # jtop reports power in mW and memory in kB
            self.power = {"rail": {"VDD_GPU_SOC": {"power": 3150}}, "tot": {"power": 23521, "avg": 22000}}
            self.memory = {"RAM": {"used": 13983 * 1024, "tot": 62780 * 1024}}

        def start(self):
            if not service_running:
                raise JtopException("The jtop.service is not active. Please run: sudo systemctl restart jtop.service")

        def close(self):
            self.closed = True

    module.jtop = jtop
    module.JtopException = JtopException
    return module


def test_jtop_total_power_and_ram(monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", fake_jtop_module())
    sampler = samplers.open_sampler("jtop", interval_ms=20)
    time.sleep(0.3)
    sampler.stop()
    assert len(sampler.readings) >= 5
    assert {(r.watts, r.ram_used_mb) for r in sampler.readings} == {(23.521, 13983.0)}
    assert sampler._jtop.closed


def test_jtop_service_not_running_is_a_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", fake_jtop_module(service_running=False))
    with pytest.raises(samplers.PowerUnavailable, match="the jtop service is not running"):
        samplers.open_sampler("jtop", 100)


def test_jtop_not_installed_is_a_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", None)  # import fails as if absent
    with pytest.raises(samplers.PowerUnavailable, match="jetson-stats \\(jtop\\) is not installed"):
        samplers.open_sampler("jtop", 100)


def test_jtop_is_closed_only_after_the_thread_has_stopped(monkeypatch):
    module = fake_jtop_module()
    reading, closed = threading.Event(), threading.Event()
    reads = {"in_progress": 0, "at_close": None}

    class SlowJtop(module.jtop):
        """A read from the sampler's thread lasts until close (or a second)."""

        @property
        def power(self):
            reads["in_progress"] += 1
            reading.set()
            closed.wait(timeout=1.0)
            reads["in_progress"] -= 1
            return {"tot": {"power": 5000}}

        @power.setter
        def power(self, value):
            pass

        def close(self):
            reads["at_close"] = reads["in_progress"]
            closed.set()
            super().close()

    module.jtop = SlowJtop
    monkeypatch.setitem(sys.modules, "jtop", module)
    sampler = samplers.open_sampler("jtop", interval_ms=10)
    assert reading.wait(timeout=30)
    sampler.stop()
    assert reads["at_close"] == 0 and sampler._jtop.closed
    assert not sampler._thread.is_alive()

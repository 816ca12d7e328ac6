"""The jtop sampler against jetson-stats' documented Python API (``jtop.jtop``), faked: the
jtop service exists only on a Jetson."""

import sys
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

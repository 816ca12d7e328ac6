"""When a board counts as throttled: one rule for a measurement's snapshots and a tegrastats log.

Two signs, both read where the unit is under load:

- **clock**: a CPU core's or the GPU's clock fell by more than ``CLOCK_DROP`` (10%) while the unit
  was loaded. A record compares the snapshots just before and just after its timed loop (the loop
  is the load); a tegrastats log compares consecutive lines whose load is at least
  ``HIGH_LOAD_PCT`` (90%) on both, since a clock that falls as the load falls is ordinary DVFS.
- **temperature**: a sensor read at or above the limit: the target's ``[thermal] limit_c`` when it
  is known, ``DEFAULT_LIMIT_C`` (90 C) otherwise. ``UNMEASURED_SENSORS`` are left out.

Why these thresholds. 10%: a governor moves even a loaded clock by a step of its frequency
table now and then, a few percent near the top of the range, and a snapshot's CPU clock is a mean
over cores; a fall of more than 10% is more than such a step, and slows a compute-bound loop by
about as much, ten times the 1% interval the stopping rule aims at. 90% load: below it the unit
is partly idle and its governor may lower the clock for that reason alone. 90 C: the middle of
the built-in targets' limits (Xavier 85, CUDA GPU 87, Orin and x86 95 C); trip points vary by
module and BSP, so a target's own limit is always preferred.

``PMIC`` is not a measurement: the Linux ``max77620`` thermal driver says "the actual temperature
of PMIC die is not available" and reports a fixed 100 C (120 or 140 C when an alarm fires); the
captures show ``PMIC@100C`` on an idle AGX Xavier. Board-side: Python 3.8, standard library.
"""

from __future__ import annotations

CLOCK_DROP = 0.10
HIGH_LOAD_PCT = 90
DEFAULT_LIMIT_C = 90.0
UNMEASURED_SENSORS = frozenset({"PMIC"})


def clock_fell(before_mhz, after_mhz):
    """Whether a clock read under load fell by more than ``CLOCK_DROP``."""
    return bool(before_mhz) and after_mhz is not None and after_mhz < before_mhz * (1 - CLOCK_DROP)


def loaded(load_pct):
    """Whether a unit at ``load_pct`` counts as loaded, so its clock is not lowered for idling."""
    return load_pct is not None and load_pct >= HIGH_LOAD_PCT


def limit_c(target_limit_c=None):
    """The temperature limit: the target's when known, the default otherwise."""
    return DEFAULT_LIMIT_C if target_limit_c is None else target_limit_c


def too_hot(sensor, celsius, target_limit_c=None):
    """Whether ``sensor`` reading ``celsius`` is at or over the limit (never an unmeasured sensor)."""
    return sensor not in UNMEASURED_SENSORS and celsius >= limit_c(target_limit_c)


def describe(target_limit_c=None):
    """The rule in one sentence, for notes and documentation."""
    limit = limit_c(target_limit_c)
    where = "the target's limit" if target_limit_c is not None else "the default limit"
    return ("throttling: a CPU core or GPU clock that fell by more than %d%% while its load was at or above "
            "%d%%, or a temperature at or above %g C (%s; %s left out: not a measurement)"
            % (round(CLOCK_DROP * 100), HIGH_LOAD_PCT, limit, where, ", ".join(sorted(UNMEASURED_SENSORS))))

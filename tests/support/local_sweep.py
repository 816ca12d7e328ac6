"""A Sweep on this machine's CPU (the built-in x86-cpu target, one thread), for tests that measure
through the paired loop or a worker directly, without a run session."""

from edgebench.results.record import Settings
from edgebench.sweep.config import SweepConfig
from edgebench.sweep.execute import Sweep
from edgebench.targets import builtin_definitions


def local_sweep(run_id: str, *, warmup_s: float = 0.02, timeout_s: float = 120) -> Sweep:
    settings = Settings(min_time_s=0, max_time_s=0, min_iterations=1, warmup_s=warmup_s, target_ci=0,
                        timeout_s=timeout_s, threads=1)
    config = SweepConfig(settings=settings, target=builtin_definitions()["x86-cpu"], mode="default", device="cpu",
                         threads=1)
    return Sweep(config, run_id, {"host": "test"})

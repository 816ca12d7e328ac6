"""Records as the sweep makes them, from realistic raw samples, for tests of what reads records."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from edgebench.board import stats
from edgebench.results.record import Latency, Record, Settings, Stability
from edgebench.results.store import RunInfo, Store

MACHINE_ID = "a1b2c3d4e5f60718"
ENV = {"host": "bench-a", "cpu_model": "AMD EPYC", "machine_id": MACHINE_ID, "python": "3.11.7",
       "packages": {"onnxruntime": "1.31.1", "torch": "2.14.1"},
       "backend": {"library": "onnxruntime", "version": "1.31.1", "device": "cpu"}}


def synthetic_record(run_id: str = "20240501-120000-aaaaaa", p50: float = 2.0, *, processes: int = 3,
                     per_process: int = 400, process_sd: float = 0.0, sample_sd: float = 0.05, seed: int = 0,
                     process_factors: tuple[float, ...] | None = None,
                     created_at: str = "2024-05-01T12:00:00+00:00", **overrides) -> Record:
    """A record built as ``sweep.records.make_record`` builds one: lognormal samples in ``processes``
    chunks whose medians scatter around ``p50`` by ``process_sd`` (log scale), or sit at
    ``p50 x process_factors`` when those are given."""
    rng = np.random.default_rng(seed)
    factors = np.exp(rng.normal(0.0, process_sd, processes)) if process_factors is None else process_factors
    medians = p50 * np.asarray(factors)
    chunks = [median * rng.lognormal(0.0, sample_sd, per_process) for median in medians]
    samples = np.concatenate(chunks)
    process_p50s = [float(np.median(chunk)) for chunk in chunks]
    checks = {**stats.stability(samples), "process_p50s": process_p50s,
              "process_spread": stats.process_spread(process_p50s)}
    fields = dict(
        run_id=run_id, created_at=created_at, model="torchvision:resnet18", model_fingerprint="sha256:" + "1" * 64,
        backend="onnxruntime", target="local", mode="default", device="cpu", precision="fp32", batch=1,
        method="sweep", machine_id=MACHINE_ID, status="ok", latency_ms=Latency(**stats.summarize(samples)),
        stability=Stability(**checks, stop_reason="target_ci"), iterations=len(samples),
        settings=Settings(min_time_s=3, max_time_s=30, min_iterations=30, warmup_s=1, target_ci=0.01, timeout_s=330,
                          threads=2, processes=processes),
        env=ENV, samples_ms=samples.tolist(),
    )
    fields.update(overrides)
    return Record(**fields)


def failed_record(run_id: str = "20240501-120000-aaaaaa", error: str = "worker crashed", **overrides) -> Record:
    """A measurement that ended in an error: no latency, no samples."""
    return synthetic_record(run_id, status="error", error=error, latency_ms=None, stability=None, samples_ms=[],
                            iterations=0, **overrides)


def energy(avg_power_w: float, p50_ms: float, idle_power_w: float = 4.0, samples: int = 40) -> dict:
    """The ``energy`` of a record, as ``sweep.energy.summarize_energy`` makes it, for a loop running at
    ``p50_ms`` per call: watts x milliseconds = millijoules."""
    return {"source": "tegrastats", "samples": samples, "avg_power_w": avg_power_w, "idle_power_w": idle_power_w,
            "mj_per_inference": avg_power_w * p50_ms, "dynamic_mj_per_inference": (avg_power_w - idle_power_w) * p50_ms}


def add_run(store: Store, make_records: Callable[[str, str], Iterable[Record]], *, host: str = "bench-a",
            git_commit: str | None = "0123456789abcdef", tags: dict[str, str] | None = None,
            env: dict | None = None) -> RunInfo:
    """A finished run in ``store`` holding ``make_records(run_id, started_at)``."""
    run = store.create_run(host=host, git_commit=git_commit, command=["edgebench", "run"], tags=tags,
                           env=ENV if env is None else env)
    for record in make_records(run.id, run.started_at):
        store.add_record(record)
    store.finish_run(run.id, "finished")
    return store.get_run(run.id)


def unique_prefix(run_id: str, run_ids: list[str]) -> str:
    """The shortest prefix (past the timestamp) naming only ``run_id``: runs made within one
    second share their first 16 characters, and may share more by chance."""
    return next(run_id[:n] for n in range(16, len(run_id) + 1)
                if [other for other in run_ids if other.startswith(run_id[:n])] == [run_id])

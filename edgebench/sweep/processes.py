"""One measurement spread over several worker processes, pooled into one result.

A process's own state (where its threads land, its memory layout, what the other tenants were
doing during its seconds) can shift a whole run by 20% on a shared machine, while the
interval inside that run stays tight. Like pyperf, edgebench spreads each measurement over
several fresh processes and reports how much they disagreed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable


def per_process_settings(settings: dict, processes: int) -> dict:
    """Each process gets an equal share of the time and iteration budget and its own warm-up."""
    return {
        **settings,
        "min_time_s": settings["min_time_s"] / processes,
        "max_time_s": settings["max_time_s"] / processes,
        "min_iterations": math.ceil(settings["min_iterations"] / processes),
    }


def run_processes(run_one: Callable[[], dict], processes: int) -> dict:
    """Run ``run_one`` up to ``processes`` times; stop at the first failure and report it."""
    results = []
    for index in range(processes):
        result = run_one()
        if result["status"] != "ok":
            if processes > 1:
                result = {**result, "error": f"worker process {index + 1} of {processes}: {result['error']}"}
            return result
        results.append(result)
    return pool(results)


def pool(results: list[dict]) -> dict:
    """Samples in the order they were taken; cold-start figures from the first process."""
    first = results[0]
    pooled = {
        **first,
        "samples_ms": [sample for result in results for sample in result["samples_ms"]],
        "process_p50s": [statistics.median(result["samples_ms"]) for result in results],
        "stop_reason": ",".join(result["stop_reason"] for result in results),
        "warmup_iterations": sum(result["warmup_iterations"] for result in results),
        "warnings": list(dict.fromkeys(w for result in results for w in result.get("warnings", []))),
        "memory_mb": {"host_peak": max((r.get("memory_mb") or {}).get("host_peak") or 0 for r in results) or None},
        # Each process's power window and state readings, summarised by the record.
        "power": [result.get("power") for result in results],
        "system": [result.get("system") or {} for result in results],
        "gpu_state": [result["gpu_state"] for result in results if result.get("gpu_state")],
    }
    # Device time (CUDA events) only where every process has it, or the two latencies would differ in origin.
    if all("device_samples_ms" in result for result in results):
        pooled["device_samples_ms"] = [sample for result in results for sample in result["device_samples_ms"]]
    else:
        pooled.pop("device_samples_ms", None)
    return pooled

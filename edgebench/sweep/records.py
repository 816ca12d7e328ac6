"""Turns a worker's result into an immutable Record."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from edgebench.board import stats
from edgebench.results.record import Artifact, Latency, Memory, Method, Record, Stability
from edgebench.results.record_versions import machine_id_of
from edgebench.sweep import energy, throttle_check
from edgebench.sweep.config import SweepConfig
from edgebench.sweep.plan import Measurement


# What the record takes up from the runner's description; the rest goes to env["backend"].
_BACKEND_FIELDS = ("options", "hooks", "include_copies", "deserialize_s", "device_peak_mb")


def make_record(measurement: Measurement, result: dict, *, run_id: str, config: SweepConfig,
                host_env: dict, method: Method = "sweep", artifacts: Sequence[Artifact] = ()) -> Record:
    """``host_env``: the measured machine's environment (the worker's ``environment`` answer);
    ``artifacts``: the files of the measurement kept in the artifact store."""
    model = measurement.model
    settings = config.settings
    samples = [float(s) for s in result.get("samples_ms") or []]
    backend = result.get("backend") or {}
    warnings = list(result.get("warnings") or [])
    latency = stability = throughput = device_latency = None
    device_samples = [float(s) for s in result.get("device_samples_ms") or []]
    if result["status"] == "ok" and device_samples:
        device_latency = Latency(**stats.summarize(device_samples))
    if result["status"] == "ok" and samples:
        summary = stats.summarize(samples)
        process_p50s = result.get("process_p50s") or []
        checks = {**stats.stability(samples), "process_p50s": process_p50s,
                  "process_spread": stats.process_spread(process_p50s)}
        latency = Latency(**summary)
        stability = Stability(**checks, stop_reason=result.get("stop_reason", "unknown"))
        warnings += stats.stability_warnings(checks, settings.target_ci)
        throughput = measurement.batch * 1000.0 / summary["p50"]
    record_energy, device_memory, energy_warnings = energy.summarize_energy(result.get("power") or [], config.idle)
    board_states = [state for window in result.get("power") or [] if window for state in window.get("tegrastats", [])]
    limit = config.target.thermal.limit_c if config.target.thermal else None
    throttled, throttle_warnings = throttle_check.assess(result.get("system") or [], board_states, limit)
    warnings += energy_warnings + throttle_warnings
    hooks = list(backend.get("hooks") or [])
    if hooks:
        warnings.append(f"measured with {len(hooks)} hook(s) attached (--allow-hooks): not a hook-free latency")
    return Record(
        run_id=run_id,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        model=model.name,
        model_fingerprint=model.fingerprint,
        # A sweep measures the models it was given, followed across runs by name; a paired
        # measurement measures variants a prune or bake made, known only by their content.
        model_spec=model.spec.strip() if method == "sweep" else None,
        backend=measurement.backend,
        target=config.target.name,
        mode=config.mode,
        device=config.device,
        precision=measurement.precision,
        batch=measurement.batch,
        method=method,
        machine_id=machine_id_of(host_env),
        input_shapes=model.input_shapes(measurement.batch),
        status=result["status"],
        error=result.get("error"),
        warnings=warnings,
        latency_ms=latency,
        device_latency_ms=device_latency,
        include_copies=backend.get("include_copies"),
        stability=stability,
        iterations=len(samples),
        warmup_iterations=result.get("warmup_iterations") or 0,
        import_s=result.get("import_s"),
        build_s=result.get("build_s"),
        deserialize_s=backend.get("deserialize_s"),
        first_inference_ms=result.get("first_inference_ms"),
        throughput_ips=throughput,
        memory_mb=Memory(host_peak=(result.get("memory_mb") or {}).get("host_peak"),
                         device_peak=_first_known(backend.get("device_peak_mb"), device_memory)),
        energy=record_energy,
        throttled=throttled if result["status"] == "ok" else None,
        hooks=hooks,
        layer_profile=result.get("layer_profile"),
        backend_options=backend.get("options") or {},
        settings=settings,
        env={
            **host_env,
            **config.board,
            "backend": {k: v for k, v in backend.items() if k not in _BACKEND_FIELDS},
            "worker_python": result.get("python"),
            **({"gpu": result["gpu_state"]} if result.get("gpu_state") else {}),
        },
        artifacts=list(artifacts),
        samples_ms=samples,
    )


def _first_known(*values):
    """The backend's own device memory figure, else the one derived from RAM over idle (Jetson)."""
    return next((value for value in values if value is not None), None)

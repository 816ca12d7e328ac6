"""Write ``store-v2.db``: a results store as the last edgebench of schema version 2 wrote it.

Version 2 stores carry ``method`` and ``machine_id`` columns and records of version 2; they have
no record ``uid`` (version 3) and no ``alembic_version`` table (version 3 moved the schema to
Alembic, which adopts this store by its ``meta.schema_version``). This store holds a sweep run
with an ok and an error record and a prune run with a paired reference and candidate. Do not
regenerate it once the schema version has moved on.

    python tests/data/make_store_v2.py
"""

from __future__ import annotations

from pathlib import Path

from make_store_v1 import SAMPLES_MS
from make_store_v1_last import HOST_ENV, MACHINE_ID, PAIRING

from edgebench.results.migrations import SCHEMA_VERSION
from edgebench.results.record import Latency, Record, Settings, Stability
from edgebench.results.store import Store

OUT = Path(__file__).with_name("store-v2.db")
COMMIT = "2222222222222222222222222222222222222222"


def record(run_id: str, method: str, model: str = "torchvision:resnet18", p50: float = 2.5, **overrides) -> Record:
    fields = dict(
        run_id=run_id, created_at="2025-03-01T12:00:05+00:00", model=model, model_fingerprint="sha256:" + "cd" * 32,
        backend="onnxruntime", target="local", mode="default", device="cpu", precision="fp32", batch=1,
        method=method, machine_id=MACHINE_ID, status="ok",
        latency_ms=Latency(mean=p50, std=0.1, min=p50 - 0.2, p50=p50, p90=p50 + 0.2, p95=p50 + 0.3, p99=p50 + 0.4,
                           max=p50 + 0.5, ci95=(p50 - 0.05, p50 + 0.05)),
        stability=Stability(cv=0.04, robust_cv=0.03, drift=0.01, outlier_fraction=0.0, ci95_halfwidth=0.05,
                            stop_reason="target_ci"),
        iterations=len(SAMPLES_MS), samples_ms=[p50 * s / 2.5 for s in SAMPLES_MS],
        settings=Settings(min_time_s=1.0, max_time_s=5.0, min_iterations=5, warmup_s=0.5, target_ci=0.02,
                          timeout_s=300.0, threads=4),
        env={**HOST_ENV, "backend": {"library": "onnxruntime", "version": "1.17.0"}},
    )
    return Record(**{**fields, **overrides})


def main() -> None:
    if SCHEMA_VERSION != 2:
        raise SystemExit("store-v2.db must be written by an edgebench with schema version 2")
    OUT.unlink(missing_ok=True)
    with Store.open(OUT) as store:
        sweep = store.create_run(host="bench-host", git_commit=COMMIT, tags={"purpose": "fixture-v2"},
                                 command=["edgebench", "run", "torchvision:resnet18", "-b", "onnxruntime"],
                                 env=HOST_ENV)
        store.add_record(record(sweep.id, "sweep"))
        store.add_record(record(sweep.id, "sweep", "torchvision:mobilenet_v3_small", status="error", batch=8, latency_ms=None,
                                stability=None, iterations=0, samples_ms=[], error="ONNXRuntimeError: quantization of HardSwish is not supported"))
        store.finish_run(sweep.id, "finished")
        prune = store.create_run(host="bench-host", git_commit=COMMIT, env=HOST_ENV,
                                 command=["edgebench", "prune", "torchvision:resnet18"])
        for model, role, p50 in (("torchvision:resnet18", "reference", 2.5), ("pruned:resnet18-0.7", "candidate", 1.9)):
            env = {**HOST_ENV, "pairing": {**PAIRING, "role": role}}
            store.add_record(record(prune.id, "paired", model, p50, env=env))
        store.finish_run(prune.id, "finished")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

"""Write ``store-v1.db``: a results store as schema version 1 writes it.

One finished run with two records: an ``ok`` record with every group filled in and raw
samples, and an ``error`` record. Later versions must keep opening this file, so do not
regenerate it once the schema version has moved on; add a ``make_store_v2.py`` instead.

    python tests/data/make_store_v1.py
"""

from __future__ import annotations

from pathlib import Path

from edgebench.results.migrations import SCHEMA_VERSION
from edgebench.results.record import Latency, Memory, Record, Settings, Stability
from edgebench.results.store import Store

OUT = Path(__file__).with_name("store-v1.db")

SAMPLES_MS = [2.5, 2.25, 2.75, 2.5, 3.125, 2.375]


def ok_record(run_id: str) -> Record:
    return Record(
        run_id=run_id,
        created_at="2024-05-01T12:00:05+00:00",
        model="torchvision:resnet18",
        model_fingerprint="sha256:" + "ab" * 32,
        backend="onnxruntime",
        target="local",
        mode="default",
        device="cpu",
        precision="fp32",
        batch=1,
        input_shapes={"input": [1, 3, 224, 224]},
        status="ok",
        warnings=["cpu frequency scaling is on"],
        latency_ms=Latency(
            mean=2.58, std=0.29, min=2.25, p50=2.5, p90=2.9, p95=3.0, p99=3.1, max=3.125,
            ci95=(2.375, 2.75),
        ),
        stability=Stability(
            cv=0.11, robust_cv=0.09, drift=0.01, outlier_fraction=0.0, ci95_halfwidth=0.075,
            stop_reason="max_time",
        ),
        iterations=len(SAMPLES_MS),
        first_inference_ms=40.0,
        build_s=0.8,
        throughput_ips=400.0,
        memory_mb=Memory(host_peak=310.5),
        backend_options={"intra_op_num_threads": 4},
        settings=Settings(
            min_time_s=1.0, max_time_s=5.0, min_iterations=5, warmup_s=0.5, target_ci=0.02,
            timeout_s=300.0, threads=4,
        ),
        env={"python": "3.11.7", "onnxruntime": "1.17.0"},
        samples_ms=SAMPLES_MS,
    )


def error_record(run_id: str) -> Record:
    return Record(
        run_id=run_id,
        created_at="2024-05-01T12:00:09+00:00",
        model="torchvision:mobilenet_v3_small",
        backend="onnxruntime",
        target="local",
        mode="default",
        device="cpu",
        precision="int8",
        batch=8,
        status="error",
        error="ONNXRuntimeError: quantization of HardSwish is not supported",
    )


def main() -> None:
    if SCHEMA_VERSION != 1:
        raise SystemExit("store-v1.db must be written by an edgebench with schema version 1")
    OUT.unlink(missing_ok=True)
    with Store.open(OUT) as store:
        run = store.create_run(
            host="bench-host",
            git_commit="0123456789abcdef0123456789abcdef01234567",
            command=["edgebench", "run", "torchvision:resnet18", "--backend", "onnxruntime"],
            tags={"purpose": "fixture"},
            env={"os": "Linux"},
        )
        store.add_record(ok_record(run.id))
        store.add_record(error_record(run.id))
        store.finish_run(run.id, "finished")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

"""Write ``store-v1-last.db``: a results store as the last edgebench of schema version 1 wrote it.

Version 1 records gained fields without a bump (``device_latency_ms``, ``include_copies``,
``deserialize_s``, ``layer_profile``), and the worker began to report ``env.machine_id``;
paired records (``edgebench prune``) were told apart only by ``env.pairing``. This store holds
what the upgrade to version 2 must read: a sweep run on one machine, then a newer prune run
with a paired reference and candidate. Do not regenerate it once the schema version has moved on.

    python tests/data/make_store_v1_last.py
"""

from __future__ import annotations

from pathlib import Path

from make_store_v1 import SAMPLES_MS, ok_record

from edgebench.results.migrations import SCHEMA_VERSION
from edgebench.results.record import Latency
from edgebench.results.store import Store

OUT = Path(__file__).with_name("store-v1-last.db")

MACHINE_ID = "5f1c0a9e7d3b2a61"
HOST_ENV = {"host": "bench-host", "os": "Linux 6.8.0", "machine": "x86_64", "cpu_model": "AMD EPYC 7B13",
            "cpu_count": 8, "cpu_affinity": 8, "python": "3.11.7", "edgebench": "0.1.0",
            "packages": {"onnxruntime": "1.17.0", "numpy": "1.26.4"}, "jetson": None, "machine_id": MACHINE_ID}
PAIRING = {"method": "2 models alternating in 0.1 s blocks, 10 rounds, order reversed every round, one worker "
                     "process, one model running at a time",
           "rounds": 10, "block_s": 0.1, "warmup_s": 0.3, "spinning": "off (session.intra_op.allow_spinning=0)"}


def sweep_record(run_id: str):
    base = ok_record(run_id)
    return base.model_copy(update={
        "created_at": "2024-06-01T12:00:05+00:00",
        "device_latency_ms": None,
        "include_copies": None,
        "import_s": 0.4,
        "env": {**HOST_ENV, "backend": {"library": "onnxruntime", "version": "1.17.0"}, "worker_python": "3.11.7"},
    })


def paired_record(run_id: str, model: str, role: str, p50: float):
    base = sweep_record(run_id)
    return base.model_copy(update={
        "created_at": "2024-06-02T09:00:05+00:00",
        "model": model,
        "model_fingerprint": None,
        "latency_ms": Latency(mean=p50, std=0.1, min=p50 - 0.2, p50=p50, p90=p50 + 0.2, p95=p50 + 0.3,
                              p99=p50 + 0.4, max=p50 + 0.5, ci95=(p50 - 0.05, p50 + 0.05)),
        "env": {**base.env, "pairing": {**PAIRING, "role": role}},
        "samples_ms": [p50 * s / 2.5 for s in SAMPLES_MS],
    })


def main() -> None:
    if SCHEMA_VERSION != 1:
        raise SystemExit("store-v1-last.db must be written by an edgebench with schema version 1")
    OUT.unlink(missing_ok=True)
    with Store.open(OUT) as store:
        sweep = store.create_run(host="bench-host", git_commit="1111111111111111111111111111111111111111",
                                 command=["edgebench", "run", "torchvision:resnet18", "-b", "onnxruntime"],
                                 env=HOST_ENV)
        store.add_record(sweep_record(sweep.id))
        store.finish_run(sweep.id, "finished")
        prune = store.create_run(host="bench-host", git_commit="1111111111111111111111111111111111111111",
                                 command=["edgebench", "prune", "torchvision:resnet18"], env=HOST_ENV)
        store.add_record(paired_record(prune.id, "torchvision:resnet18", "reference", 2.5))
        store.add_record(paired_record(prune.id, "pruned:resnet18-0.7", "candidate", 1.9))
        store.finish_run(prune.id, "finished")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

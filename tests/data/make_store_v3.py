"""Write ``store-v3.db``: a results store as the last edgebench of schema version 3 wrote it.

Version 3 stores give every record a ``uid`` and carry an ``alembic_version`` table; their records
are of version 2: no ``model_spec`` and no ``artifacts`` (record version 3, store version 4). This
store holds two nightly sweep runs of one ONNX model, the second with a changed file (another
fingerprint), so the upgraded store shows how records from before ``model_spec`` are keyed. Do not
regenerate it once the schema version has moved on.

    python tests/data/make_store_v3.py
"""

from __future__ import annotations

from pathlib import Path

from make_store_v2 import record

from edgebench.results.migrations import SCHEMA_VERSION
from edgebench.results.store import Store

OUT = Path(__file__).with_name("store-v3.db")
COMMIT = "3333333333333333333333333333333333333333"
FINGERPRINTS = ("sha256:" + "a1" * 32, "sha256:" + "c3" * 32)


def main() -> None:
    if SCHEMA_VERSION != 3:
        raise SystemExit("store-v3.db must be written by an edgebench with schema version 3")
    OUT.unlink(missing_ok=True)
    with Store.open(OUT) as store:
        for night, fingerprint in enumerate(FINGERPRINTS, start=1):
            run = store.create_run(host="bench-host", git_commit=COMMIT, tags={"nightly": f"2025-06-0{night}"},
                                   command=["edgebench", "run", "models/resnet18.onnx", "-b", "onnxruntime"])
            store.add_record(record(run.id, "sweep", "resnet18.onnx", 2.5 + night / 10,
                                    created_at=f"2025-06-0{night}T02:00:05+00:00", model_fingerprint=fingerprint))
            store.finish_run(run.id, "finished")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

"""Store inserts per second: realistic records (about 200 raw samples each) added one transaction
each, as ``edgebench run`` adds them, into SQLite and into PostgreSQL, by one writer and by N
concurrent writer processes.

PostgreSQL is a throwaway server of its own on loopback (tests/support/postgres.py), durable
(fsync on) like a lab's; SQLite is a file in a temporary directory. Each writer opens the store,
creates a run and adds its records; the figure is every writer's records over the wall time from
the first insert to the last. Run it on a quiet machine.

    .venv/bin/python benchmarks/store_inserts.py [--records 500] [--writers 4] [--out store_inserts.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))

from postgres import start_postgres  # noqa: E402  (tests/support, put on the path above)
from records import synthetic_record  # noqa: E402

from edgebench.results.store import Store  # noqa: E402

SAMPLES = (2, 100)  # processes x samples per process: 200 raw samples per record


def write(location: str, count: int, start: multiprocessing.Barrier) -> tuple[float, float]:
    """One writer: its run and ``count`` records; (first insert, last commit) on the wall clock."""
    with Store.open(location) as store:
        run = store.create_run(host="bench", git_commit=None, command=["store_inserts"])
        records = [synthetic_record(run.id, model=f"model-{index}", processes=SAMPLES[0], per_process=SAMPLES[1],
                                    seed=index) for index in range(count)]
        start.wait()  # every writer ready: they insert at once
        began = time.time()
        for record in records:
            store.add_record(record)
        ended = time.time()
        store.finish_run(run.id, "finished")
    return began, ended


def measure(location: str, writers: int, count: int) -> dict:
    Store.open(location).close()  # the schema made before the clock starts
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Barrier(writers)
        with context.Pool(writers) as pool:
            spans = pool.starmap(write, [(location, count, start)] * writers)
    seconds = max(end for _, end in spans) - min(began for began, _ in spans)
    return {"writers": writers, "records": writers * count, "seconds": round(seconds, 3),
            "inserts_per_s": round(writers * count / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500, help="records per writer")
    parser.add_argument("--writers", type=int, default=4, help="concurrent writer processes for the second row")
    parser.add_argument("--out", type=Path, default=Path("store_inserts.json"))
    args = parser.parse_args()

    rows = []
    server = start_postgres(durable=True)
    try:
        with tempfile.TemporaryDirectory(prefix="store-inserts-") as scratch:
            for writers in (1, args.writers):
                sqlite_file = str(Path(scratch) / f"writers-{writers}.db")
                postgres_url = server.create_database(f"writers_{writers}")
                for store, location in (("sqlite", sqlite_file), ("postgresql", postgres_url)):
                    rows.append({"store": store, **measure(location, writers, args.records)})
                    print(f"{store}, {writers} writer(s): {rows[-1]['inserts_per_s']} inserts/s", file=sys.stderr)
    finally:
        server.stop()

    print("| store | writers | records | seconds | inserts/s |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['store']} | {row['writers']} | {row['records']} | {row['seconds']} | {row['inserts_per_s']} |")
    args.out.write_text(json.dumps({"samples_per_record": SAMPLES[0] * SAMPLES[1], "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()

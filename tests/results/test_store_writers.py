"""Many writers, nothing lost: OS processes writing runs and records into one store at once, on
SQLite and on PostgreSQL, leave every record stored exactly once under unique run ids and uids."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter

from edgebench.results.store import Store

WRITERS, RUNS_EACH, RECORDS_EACH = 4, 2, 15

WRITER = textwrap.dedent(
    """
    import sys
    from edgebench.results.record import Record
    from edgebench.results.store import Store

    location, writer, runs, records = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with Store.open(location) as store:
        for run_index in range(runs):
            run = store.create_run(host=f"writer-{writer}", git_commit=None, command=["writer", writer])
            for index in range(records):
                store.add_record(Record(
                    run_id=run.id, created_at="now", model=f"w{writer}-r{run_index}-{index}", backend="b",
                    target="local", mode="default", device="cpu", precision="fp32", batch=1, method="sweep",
                    status="ok", samples_ms=[float(i) for i in range(200)],
                ))
            store.finish_run(run.id, "finished")
    """
)


def test_concurrent_writer_processes_store_every_record_exactly_once(store_location, tmp_path):
    Store.open(store_location).close()  # made first: the writers race on records, not on the schema
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writers = [subprocess.Popen([sys.executable, str(script), store_location, str(writer), str(RUNS_EACH),
                                 str(RECORDS_EACH)], stderr=subprocess.PIPE, text=True)
               for writer in range(WRITERS)]
    errors = [writer.communicate(timeout=600)[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0] * WRITERS, errors

    with Store.open(store_location, create=False) as store:
        runs = store.runs()
        stored = [(uid, record) for run in runs for uid, record in store.records_with_uids(run.id)]
    expected = {f"w{writer}-r{run}-{index}" for writer in range(WRITERS) for run in range(RUNS_EACH)
                for index in range(RECORDS_EACH)}
    models = Counter(record.model for _, record in stored)
    assert set(models) == expected and set(models.values()) == {1}
    assert len({uid for uid, _ in stored}) == len(stored)
    assert len({run.id for run in runs}) == len(runs) == WRITERS * RUNS_EACH
    assert {(run.status, run.record_count) for run in runs} == {("finished", RECORDS_EACH)}
    # Each run's records in the order its writer stored them.
    for run in runs:
        with Store.open(store_location, create=False) as store:
            indexes = [int(record.model.rsplit("-", 1)[1]) for record in store.records(run.id)]
        assert indexes == list(range(RECORDS_EACH))

"""regress --confirm where the runtime changed between the baseline and tonight: two long-lived
workers take turns, the baseline's on --reference-python; without it, the reason says the runtime
could not be restored. Nights are real `edgebench run`s; the baseline record is then rewritten to
say it ran another ONNX Runtime. With `.venv-reference` (`make test` builds it: an older ONNX
Runtime, numpy and edgebench's worker) that runtime is real: its worker runs it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import onnxruntime
import pytest

from edgebench.results.store import Store

from test_confirm import LARGE, SMALL, night

CONFIRM = ["--confirm", "--confirm-rounds", "4", "--block-time", "0.01", "--confirm-sessions", "2"]
OLD = "0.0.1"
REFERENCE_PYTHON = Path(__file__).resolve().parents[2] / ".venv-reference" / "bin" / "python"


def reference_runtime() -> str | None:
    """The ONNX Runtime version of ``.venv-reference`` when its worker can run there and it differs
    from this interpreter's; None otherwise."""
    if not REFERENCE_PYTHON.exists():
        return None
    found = subprocess.run([str(REFERENCE_PYTHON), "-c", "import edgebench.board.worker, onnxruntime; "
                            "print(onnxruntime.__version__)"], capture_output=True, text=True)
    version = found.stdout.strip()
    return version if found.returncode == 0 and version != onnxruntime.__version__ else None


def baseline_ran_an_older_runtime(db: Path, version: str = OLD) -> None:
    """The first night's record says it ran onnxruntime ``version`` (the way an upgrade between nights reads)."""
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE results SET record = json_set(record, '$.env.backend.version', ?) "
                           "WHERE id = (SELECT MIN(id) FROM results)", (version,))
    connection.close()


def confirmation_records(db: Path, run_id: str):
    with Store.open(db, create=False) as store:
        return store.records(run_id)


def test_a_changed_runtime_is_confirmed_by_two_workers_taking_turns(cli, tmp_path):
    night(cli, SMALL)
    night(cli, LARGE)
    baseline_ran_an_older_runtime(tmp_path / "r.db")
    result = cli("regress", "--store", "r.db", "--json", *CONFIRM, "--reference-python", sys.executable)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    confirmation = report["verdicts"][0]["confirmation"]
    assert confirmation["outcome"] == "regression", confirmation["reason"]
    assert confirmation["ratio"]["ratio"] > 1.5
    # This interpreter has tonight's runtime, so the baseline's could not be restored: said, not hidden.
    assert f"the reference's runtime could not be restored: its record ran onnxruntime {OLD}" in confirmation["reason"]
    assert f"{sys.executable} has onnxruntime" in confirmation["reason"]
    records = confirmation_records(tmp_path / "r.db", report["confirm"]["run"])
    assert [r.env["pairing"]["role"] for r in records] == ["reference", "contender"]
    for record in records:
        pairing = record.env["pairing"]
        assert pairing["workers"] == 2 and "long-lived worker" in pairing["method"]
        assert [side["interpreter"] for side in pairing["sides"]] == [sys.executable] * 2
        assert len(pairing["orders"]) == 4 and isinstance(pairing["seed"], int)


@pytest.mark.skipif(reference_runtime() is None, reason="no .venv-reference with another ONNX Runtime than this "
                    "interpreter's (`make test` builds one with onnxruntime 1.31.1)")
def test_a_real_older_runtime_is_restored_in_its_own_worker(cli, tmp_path):
    older = reference_runtime()
    night(cli, SMALL)
    night(cli, LARGE)
    baseline_ran_an_older_runtime(tmp_path / "r.db", older)
    result = cli("regress", "--store", "r.db", "--json", *CONFIRM, "--reference-python", str(REFERENCE_PYTHON))
    assert result.returncode == 1, result.stderr
    confirmation = json.loads(result.stdout)["verdicts"][0]["confirmation"]
    assert confirmation["outcome"] == "regression", confirmation["reason"]
    assert "could not be restored" not in confirmation["reason"]
    records = confirmation_records(tmp_path / "r.db", json.loads(result.stdout)["confirm"]["run"])
    sides = records[0].env["pairing"]["sides"]
    # Each side ran in its own worker on its own interpreter, with the runtime its record names.
    assert [side["interpreter"] for side in sides] == [str(REFERENCE_PYTHON), sys.executable]
    assert [side["runtime"] for side in sides] == [f"onnxruntime {older}", f"onnxruntime {onnxruntime.__version__}"]
    assert [r.env["backend"]["version"] for r in records] == [older, onnxruntime.__version__]


def test_without_reference_python_one_process_measures_both_and_the_reason_says_so(cli, tmp_path):
    night(cli, SMALL)
    night(cli, LARGE)
    baseline_ran_an_older_runtime(tmp_path / "r.db")
    result = cli("regress", "--store", "r.db", "--json", *CONFIRM)
    report = json.loads(result.stdout)
    confirmation = report["verdicts"][0]["confirmation"]
    assert confirmation["outcome"] == "regression", confirmation["reason"]
    assert ("the reference's runtime could not be restored" in confirmation["reason"]
            and "--reference-python" in confirmation["reason"])
    records = confirmation_records(tmp_path / "r.db", report["confirm"]["run"])
    assert {r.env["pairing"]["workers"] for r in records} == {1}


def test_the_same_runtime_needs_no_second_worker_and_no_note(cli, tmp_path):
    night(cli, SMALL)
    night(cli, LARGE)
    result = cli("regress", "--store", "r.db", "--json", *CONFIRM, "--reference-python", sys.executable)
    report = json.loads(result.stdout)
    assert "restored" not in report["verdicts"][0]["confirmation"]["reason"]
    records = confirmation_records(tmp_path / "r.db", report["confirm"]["run"])
    assert {r.env["pairing"]["workers"] for r in records} == {1}


def test_reference_python_is_checked_in_one_line(cli, tmp_path):
    night(cli, SMALL)
    missing = cli("regress", "--store", "r.db", *CONFIRM, "--reference-python", str(tmp_path / "python9"))
    assert missing.returncode == 2 and "no such executable" in missing.stderr and "Traceback" not in missing.stderr
    alone = cli("regress", "--store", "r.db", "--reference-python", sys.executable)
    assert alone.returncode == 2 and "add --confirm" in alone.stderr


def test_ctrl_c_during_turns_ends_both_workers(cli, tmp_path):
    from interrupting import Interrupted

    night(cli, SMALL)
    night(cli, LARGE)
    baseline_ran_an_older_runtime(tmp_path / "r.db")
    mark = uuid.uuid4().hex  # inherited by the workers: how to find them afterwards
    run = Interrupted(["regress", "--store", "r.db", *CONFIRM, "--confirm-rounds", "400",
                       "--reference-python", sys.executable], tmp_path, env={"EDGEBENCH_TEST_MARK": mark})
    run.wait_for_line("session 1 of at most")
    deadline = time.monotonic() + 120
    while len(marked_processes(mark, "--serve")) < 2:  # both workers started, blocks under way
        assert run.proc.poll() is None and time.monotonic() < deadline, run.stderr
        time.sleep(0.1)
    assert run.interrupt() == 130, run.stderr
    assert "Traceback" not in run.stderr
    assert not marked_processes(mark)


def marked_processes(mark: str, argument: str = "") -> list[int]:
    """This machine's processes started under ``mark`` (with ``argument`` on their command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                marked = f"EDGEBENCH_TEST_MARK={mark}".encode() in (entry / "environ").read_bytes()
                if marked and argument.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # gone meanwhile, or not ours
                continue
    return found

"""``--machine`` and ``--board`` on ``results``, ``compare``, ``regress`` and ``report``: a shared store
holding two boards' runs, one of them reserved through labgrid, read one board at a time."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from edgebench.report.build import build_report
from edgebench.results.select import Scope
from edgebench.results.store import Store
from records import add_run, synthetic_record

# A workstation measured in place, and a Jetson reserved through a labgrid place: its board is the
# place, whatever the host name the board reports.
MACHINE_A, MACHINE_B = "a1" * 8, "b2" * 8
BENCH = {"host": "bench-a", "cpu_model": "AMD EPYC", "machine_id": MACHINE_A}
XAVIER = {"host": "xavier-07", "cpu_model": "ARMv8 Processor rev 0 (v8l)", "machine_id": MACHINE_B,
          "lab": {"place": "xavier-lab-1", "coordinator": "127.0.0.1:20408", "tags": {"board": "xavier"}}}
BOARDS = {"bench-a": (MACHINE_A, BENCH), "xavier-lab-1": (MACHINE_B, XAVIER)}


def measured(board: str, p50s: dict[str, float], seed: int):
    """A run's records on ``board``: one per backend, three processes around each p50."""
    machine, env = BOARDS[board]

    def make(run_id: str, started_at: str):
        return [synthetic_record(run_id, p50, process_factors=(0.998, 1.0, 1.003), per_process=300,
                                 seed=seed + index, created_at=started_at, backend=backend, machine_id=machine,
                                 env=env)
                for index, (backend, p50) in enumerate(p50s.items())]
    return make


@pytest.fixture(scope="module")
def lab_store(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Oldest first: a run measuring both boards (a suite of two targets), then two runs per board in
    turn; the newest, on the Xavier, has onnxruntime 50% slower. Returns the path and the run ids."""
    path = tmp_path_factory.mktemp("lab") / "shared.db"
    with Store.open(path) as store:
        def both(run_id, started_at):
            return [*measured("bench-a", {"eager": 10.0}, 0)(run_id, started_at),
                    *measured("xavier-lab-1", {"eager": 20.0}, 5)(run_id, started_at)]
        runs = {
            "both": add_run(store, both).id,
            "a1": add_run(store, measured("bench-a", {"eager": 10.0, "onnxruntime": 2.0}, 10), host="bench-a").id,
            "b1": add_run(store, measured("xavier-lab-1", {"eager": 20.0, "onnxruntime": 4.0}, 20),
                          host="xavier-07").id,
            "a2": add_run(store, measured("bench-a", {"eager": 10.0, "onnxruntime": 2.0}, 30), host="bench-a").id,
            "b2": add_run(store, measured("xavier-lab-1", {"eager": 20.0, "onnxruntime": 6.0}, 40),
                          host="xavier-07").id,
        }
    return path, runs


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("edgebench: error: ")
    for fragment in fragments:
        assert fragment in line


# results list and show


def test_results_list_keeps_the_runs_of_a_board_or_machine(cli, lab_store):
    path, runs = lab_store

    def listed(*options: str) -> set[str]:
        result = cli("results", "list", "--store", str(path), "--json", *options)
        assert result.returncode == 0, result.stderr
        return {run["id"] for run in json.loads(result.stdout)}

    assert listed() == set(runs.values())
    assert listed("--board", "xavier-lab-1") == {runs["both"], runs["b1"], runs["b2"]}
    assert listed("--machine", MACHINE_A[:6]) == {runs["both"], runs["a1"], runs["a2"]}
    assert_one_line_error(cli("results", "list", "--store", str(path), "--machine", MACHINE_A[:6], "--board",
                              "xavier-lab-1"), f"no record of machine '{MACHINE_A[:6]}' and board 'xavier-lab-1'")
    # The host the Xavier reports is not its board: the place the run reserved is.
    assert_one_line_error(cli("results", "list", "--store", str(path), "--board", "xavier-07"),
                          "no record of board 'xavier-07' in the store",
                          f"machines: {MACHINE_A[:8]}, {MACHINE_B[:8]}; boards: bench-a, xavier-lab-1")


def test_results_show_names_the_boards_and_keeps_one_boards_records(cli, lab_store):
    path, runs = lab_store
    shown = cli("results", "show", runs["both"], "--store", str(path))
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"board\s+bench-a, xavier-lab-1 *\n", shown.stdout)  # the summary row
    table = shown.stdout.split("2 records")[1]
    assert "board" in table and "bench-a" in table and "xavier-lab-1" in table  # a column: two boards
    one = cli("results", "show", runs["both"], "--store", str(path), "--board", "bench-a", "--json")
    assert [(r["machine_id"], r["env"]["host"]) for r in json.loads(one.stdout)] == [(MACHINE_A, "bench-a")]
    single = cli("results", "show", runs["a1"], "--store", str(path))
    assert "board" not in single.stdout.split("2 records")[1]  # one board: no column
    assert_one_line_error(cli("results", "show", runs["a1"], "--store", str(path), "--board", "xavier-lab-1"),
                          f"no record of board 'xavier-lab-1' in run {runs['a1']}", "boards: bench-a")


# compare


def test_compare_restricts_both_sides_to_a_board(cli, lab_store):
    path, _ = lab_store
    common = ["compare", "--store", str(path), "--baseline", "eager", "--contender", "onnxruntime"]
    every = cli(*common, "--format", "csv")
    assert every.returncode == 0, every.stderr
    speedups = {row["board"]: round(float(row["speedup"]), 1) for row in csv.DictReader(io.StringIO(every.stdout))}
    assert speedups == {"bench-a": 5.0, "xavier-lab-1": 3.3}  # each board's latest records
    table = cli(*common)
    assert re.search(r"model\s+board\s+baseline", table.stdout)  # two boards: a board column
    rows = list(csv.DictReader(io.StringIO(cli(*common, "--board", "xavier-lab-1", "--format", "csv").stdout)))
    assert [(row["board"], row["machine_id"], round(float(row["speedup"]), 1)) for row in rows] == [
        ("xavier-lab-1", MACHINE_B, 3.3)]
    narrowed = cli(*common, "--machine", MACHINE_A[:4], "--format", "markdown")
    assert narrowed.returncode == 0, narrowed.stderr
    header, _, row = narrowed.stdout.splitlines()  # one board: no board column
    assert header.startswith("| model | batch | precision | baseline |") and "| eager | onnxruntime | 10.0" in row
    assert_one_line_error(cli(*common, "--board", "jetson-9"), "no record of board 'jetson-9' in the store",
                          "boards: bench-a, xavier-lab-1")
    assert_one_line_error(cli(*common, "--machine", "ffff"), "no record of machine 'ffff'",
                          f"machines: {MACHINE_A[:8]}, {MACHINE_B[:8]}")


def test_compare_sets_two_boards_side_by_side_with_the_board_selector(cli, lab_store):
    path, runs = lab_store
    result = cli("compare", "--store", str(path), "--baseline", "board=bench-a", "--contender", "board=xavier-lab-1",
                 "--run", runs["both"], "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    (pair,) = payload["pairs"]
    assert payload["varied"] == ["board"] and "machine_id" not in pair["key"]  # a board stands for its machine
    assert (pair["baseline"]["board"], pair["contender"]["board"]) == ("bench-a", "xavier-lab-1")
    assert pair["speedup"] == pytest.approx(0.5, rel=0.02)
    table = cli("compare", "--store", str(path), "--baseline", "board=bench-a", "--contender", "board=xavier-lab-1",
                "--run", runs["both"])
    assert "bench-a" in table.stdout and "xavier-lab-1" in table.stdout
    assert re.search(r"model\s+baseline\s+contender", table.stdout)  # the labels name the boards: no column
    assert_one_line_error(cli("compare", "--store", str(path), "--baseline", "board=xavier-07", "--contender", "eager"),
                          "selector 'board=xavier-07' matches no record", "boards: bench-a, xavier-lab-1")


# regress


def test_regress_judges_one_boards_latest_run_against_that_boards_history(cli, lab_store):
    path, runs = lab_store
    latest = cli("regress", "--store", str(path), "--json")
    assert latest.returncode == 1  # the newest run, the Xavier's, regressed
    assert json.loads(latest.stdout)["contender_run"] == runs["b2"]

    bench = cli("regress", "--store", str(path), "--board", "bench-a", "--json")
    assert bench.returncode == 0, bench.stdout
    payload = json.loads(bench.stdout)
    assert (payload["contender_run"], payload["board"], payload["machine"]) == (runs["a2"], "bench-a", None)
    verdicts = {v["key"]["backend"]: v for v in payload["verdicts"]}
    assert {backend: (v["outcome"], v["board"], v["baseline_run"]) for backend, v in verdicts.items()} == {
        "eager": ("unchanged", "bench-a", runs["a1"]), "onnxruntime": ("unchanged", "bench-a", runs["a1"])}
    assert verdicts["eager"]["history_runs"] == 2  # a1 and the run of both boards; no Xavier record

    xavier = cli("regress", "--store", str(path), "--machine", MACHINE_B[:8])
    assert xavier.returncode == 1
    words = " ".join(xavier.stdout.split())  # the summary line wraps at the console's width
    assert "1 regression, 0 failed, 0 improvement, 1 unchanged, 0 new (sweep records" in words
    assert f"contender run {runs['b2']}, machine '{MACHINE_B[:8]}')" in words


def test_regress_searches_a_keys_history_among_its_own_machines_runs(cli, lab_store, monkeypatch):
    # A lab's store interleaves its boards' runs: the scan limit counts only runs of the keys' machines.
    path, runs = lab_store
    monkeypatch.setattr("edgebench.results.regress.HISTORY_SCAN_LIMIT", 1)
    result = cli("regress", "--store", str(path), "--contender", runs["a2"], "--json")
    assert {v["baseline_run"] for v in json.loads(result.stdout)["verdicts"]} == {runs["a1"]}  # b1 is newer


def test_regress_of_a_run_of_two_boards_names_the_board_of_each_key(cli, lab_store, tmp_path):
    path, runs = lab_store
    junit = tmp_path / "regress.xml"
    result = cli("regress", "--store", str(path), "--contender", runs["both"], "--junit", str(junit))
    assert result.returncode == 0, result.stdout
    assert "eager fp32 local/default/cpu on xavier-lab-1" in result.stdout
    assert "eager fp32 local/default/cpu on bench-a" in junit.read_text()
    one = cli("regress", "--store", str(path), "--contender", runs["both"], "--board", "bench-a", "--json")
    assert [v["board"] for v in json.loads(one.stdout)["verdicts"]] == ["bench-a"]
    assert_one_line_error(cli("regress", "--store", str(path), "--contender", runs["a1"], "--board", "xavier-lab-1"),
                          f"no record of board 'xavier-lab-1' in run {runs['a1']}'s sweep records", "boards: bench-a")
    assert_one_line_error(cli("regress", "--store", str(path), "--board", "jetson-9"),
                          "no sweep records of board 'jetson-9' in the store", "boards: bench-a, xavier-lab-1")
    assert_one_line_error(cli("regress", "--store", str(path), "--board", " "), "--board needs a value")


# report


def test_report_of_one_board(lab_store, tmp_path):
    path, runs = lab_store
    with Store.open(path, create=False) as store:
        data = build_report(store, tmp_path / "bench", scope=Scope(board="bench-a"))
        assert data.run.id == runs["a2"] and data.scope == "board 'bench-a'"
        assert data.history_runs == 3  # the run of both boards, a1, a2: never a Xavier run
        assert {row.record.board for row in data.rows} == {"bench-a"}
        both = build_report(store, tmp_path / "both", runs["both"])
        assert [row.label for row in both.rows] == ["torchvision:resnet18 b1 bench-a",
                                                     "torchvision:resnet18 b1 xavier-lab-1"]
        assert ("board", "bench-a | xavier-lab-1") in both.environment


def test_report_command_with_a_board(cli, lab_store, tmp_path):
    path, runs = lab_store
    result = cli("report", "--store", str(path), "--out", str(tmp_path / "out"), "--board", "xavier-lab-1")
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "out" / "index.html").read_text()
    assert f"run {runs['b2']}" in page and "only the records of board &#39;xavier-lab-1&#39;" in page
    assert_one_line_error(cli("report", "--store", str(path), "--out", str(tmp_path / "x"), "--board", "xavier-07"),
                          "no sweep records of board 'xavier-07' in the store", "boards: bench-a, xavier-lab-1")

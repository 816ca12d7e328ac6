"""Selectors: parsing, matching records, and errors that list what exists."""

from __future__ import annotations

import pytest

from edgebench.errors import UsageError
from edgebench.results.frame import records_frame
from edgebench.results.select import Scope, Selector, in_scope, parse_selector, select, stored_runs
from edgebench.results.store import RunInfo, Store

from records import synthetic_record

RUN_A = "20261120-010000-aaaaaa"
RUN_B = "20261121-010000-bbbbbb"
RUN_C = "20261121-020000-cccccc"


def run_info(run_id: str, **tags: str) -> RunInfo:
    started = f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}T{run_id[9:11]}:{run_id[11:13]}:00+00:00"
    return RunInfo(id=run_id, started_at=started, status="finished", host="bench-a", command=["edgebench"],
                   tags=tags)


RUNS = [run_info(RUN_C), run_info(RUN_B, nightly="2026-11-21"), run_info(RUN_A, nightly="2026-11-20")]
RECORDS = [
    synthetic_record(RUN_A, backend="eager"),
    synthetic_record(RUN_A, backend="onnxruntime"),
    synthetic_record(RUN_B, backend="tensorrt", target="xavier", device="cuda", mode="maxn"),
    synthetic_record(RUN_B, backend="tensorrt", target="xavier", device="cuda", mode="15w"),
    synthetic_record(RUN_C, backend="onnxruntime", target="xavier", device="cpu", mode="15w"),
]


def chosen(selector: str) -> list[tuple[str, str, str]]:
    return [(r.run_id, r.backend, r.mode) for r in select(RECORDS, selector, RUNS)]


def test_parse_reads_every_form():
    selector = parse_selector(" tensorrt , mode=15w,target=xavier,run=2026,tag:nightly=2026-11-20 ")
    assert selector == Selector(
        text=" tensorrt , mode=15w,target=xavier,run=2026,tag:nightly=2026-11-20 ",
        fields={"backend": "tensorrt", "mode": "15w", "target": "xavier"},
        run="2026",
        tags={"nightly": "2026-11-20"},
    )


def test_a_bare_word_and_backend_equals_select_the_same_records():
    assert chosen("eager") == chosen("backend=eager") == [(RUN_A, "eager", "default")]


def test_all_conditions_must_hold():
    assert chosen("tensorrt,mode=15w") == [(RUN_B, "tensorrt", "15w")]
    assert chosen("target=xavier,mode=15w") == [(RUN_B, "tensorrt", "15w"), (RUN_C, "onnxruntime", "15w")]
    assert chosen("device=cpu,target=xavier") == [(RUN_C, "onnxruntime", "15w")]


def test_run_by_unique_prefix_and_by_tag():
    assert chosen("run=20261120") == [(RUN_A, "eager", "default"), (RUN_A, "onnxruntime", "default")]
    assert chosen("run=20261121-02") == [(RUN_C, "onnxruntime", "15w")]
    assert chosen("tag:nightly=2026-11-21,mode=maxn") == [(RUN_B, "tensorrt", "maxn")]


def test_an_ambiguous_run_prefix_names_its_matches():
    with pytest.raises(UsageError, match=f"ambiguous: it matches {RUN_C}, {RUN_B}"):
        select(RECORDS, "run=20261121", RUNS)


def test_an_unknown_run_lists_the_newest_runs():
    with pytest.raises(UsageError, match=f"no run '2025'; newest runs: {RUN_C}, {RUN_B}, {RUN_A}"):
        select(RECORDS, "run=2025", RUNS)


def test_a_selector_matching_nothing_lists_what_exists():
    with pytest.raises(UsageError) as error:
        select(RECORDS, "tensorrt,mode=30w", RUNS)
    message = str(error.value)
    assert message.startswith("selector 'tensorrt,mode=30w' matches no record;")
    assert "backends: eager, onnxruntime, tensorrt" in message
    assert "modes: 15w, default, maxn" in message
    assert "targets: local, xavier" in message
    assert f"newest runs: {RUN_C}, {RUN_B}, {RUN_A}" in message
    assert "tags: nightly=2026-11-20, nightly=2026-11-21" in message


def test_a_tag_no_run_carries_matches_nothing():
    with pytest.raises(UsageError, match="matches no record; .*tags: nightly=2026-11-20"):
        select(RECORDS, "tag:nightly=2026-11-22", RUNS)


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty selector"),
    (" , ", "empty selector"),
    ("colour=red", "cannot read 'colour=red'"),
    ("mode=", "cannot read 'mode='"),
    ("tag:=x", "cannot read 'tag:=x'"),
    ("tag:nightly", "cannot read 'tag:nightly'"),
    ("eager,backend=tensorrt", "names backend twice"),
    ("run=a,run=b", "names run twice"),
])
def test_unreadable_selectors_are_usage_errors(text, message):
    with pytest.raises(UsageError, match=message):
        parse_selector(text)


def test_a_store_without_runs_says_so(tmp_path):
    with Store.open(tmp_path / "empty.db") as store, pytest.raises(UsageError, match="has no runs"):
        stored_runs(store)


# Boards and the --machine/--board scope

LAB = {"host": "xavier-07", "lab": {"place": "xavier-lab-1", "coordinator": "127.0.0.1:20408", "tags": {}}}
ON_TWO_BOARDS = [synthetic_record(RUN_A, backend="eager", machine_id="a" * 16, env={"host": "bench-a"}),
                 synthetic_record(RUN_A, backend="eager", machine_id="b" * 16, env=LAB)]


def test_a_records_board_is_the_labgrid_place_it_reserved_else_its_host():
    assert [record.board for record in ON_TWO_BOARDS] == ["bench-a", "xavier-lab-1"]
    assert synthetic_record(env={"host": "xavier-07", "lab": None}).board == "xavier-07"
    assert synthetic_record(env={}).board is None
    frame = records_frame(ON_TWO_BOARDS, [run_info(RUN_A)])
    assert list(frame["board"]) == ["bench-a", "xavier-lab-1"]
    assert list(frame.columns).index("board") == list(frame.columns).index("machine_id") + 1


def test_the_board_selector_takes_a_name_and_lists_the_boards_when_it_matches_nothing():
    assert select(ON_TWO_BOARDS, "board=xavier-lab-1", RUNS) == ON_TWO_BOARDS[1:]
    with pytest.raises(UsageError, match="selector 'board=xavier-07' matches no record; .*boards: bench-a, "
                                         "xavier-lab-1"):
        select(ON_TWO_BOARDS, "board=xavier-07", RUNS)  # the host name of a board reserved through labgrid


def test_a_scope_keeps_one_machines_or_boards_records_and_names_what_exists():
    assert in_scope(ON_TWO_BOARDS, Scope(), "run A") == ON_TWO_BOARDS
    assert in_scope(ON_TWO_BOARDS, Scope(machine="aaaa"), "run A") == ON_TWO_BOARDS[:1]
    assert in_scope(ON_TWO_BOARDS, Scope(board="xavier-lab-1"), "run A") == ON_TWO_BOARDS[1:]
    assert in_scope(ON_TWO_BOARDS, Scope(machine="bbb", board="xavier-lab-1"), "run A") == ON_TWO_BOARDS[1:]
    with pytest.raises(UsageError, match="^no record of machine 'aaaa' and board 'xavier-lab-1' in run A; "
                                         "machines: aaaaaaaa, bbbbbbbb; boards: bench-a, xavier-lab-1$"):
        in_scope(ON_TWO_BOARDS, Scope(machine="aaaa", board="xavier-lab-1"), "run A")
    with pytest.raises(UsageError, match="--machine needs a value"):
        Scope(machine="")

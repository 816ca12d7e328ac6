"""Selectors: parsing, matching records, and errors that list what exists."""

from __future__ import annotations

import pytest

from edgebench.errors import UsageError
from edgebench.results.select import Selector, parse_selector, select, stored_runs
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

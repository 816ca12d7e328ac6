"""regress follows a model by its name across nights: a nightly file that now holds a grown model
is judged against the nights before (not called new), and the changed fingerprint is listed."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgebench.models import resolve_model
from edgebench.results.regress import regress
from edgebench.results.store import Store

from onnx_models import conv_stack
from records import add_run, synthetic_record

STEADY = dict(process_sd=0.003, sample_sd=0.04)
DATA = Path(__file__).parent.parent / "data"


def nightly(store, resolved, p50, seed, spec=None):
    """One night's run of ``resolved`` as the suite named it (``spec``: its path as typed)."""
    return add_run(store, lambda run_id, started: [synthetic_record(
        run_id, p50, seed=seed, created_at=started, model=resolved.name, model_fingerprint=resolved.fingerprint,
        model_spec=spec or resolved.spec, **STEADY)])


def test_a_nightly_file_holding_a_grown_model_is_judged_by_name_and_the_change_listed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("models").mkdir()
    spec = "models/net.onnx"
    before = resolve_model(str(conv_stack(spec, convs=2)))
    with Store.open(tmp_path / "r.db") as store:
        for night, p50 in enumerate((2.0, 2.02, 1.99)):
            nightly(store, before, p50, seed=night)
        after = resolve_model(str(conv_stack(spec, convs=3)))  # the same path, one more conv
        nightly(store, after, 2.3, seed=9)
        report = regress(store)
    assert before.fingerprint != after.fingerprint and before.spec == after.spec  # the premise
    (verdict,) = report.verdicts
    assert verdict.outcome == "regression"
    assert verdict.baseline.model_fingerprint == before.fingerprint
    assert verdict.significance.history_runs == 3
    short = [fingerprint.removeprefix("sha256:")[:12] for fingerprint in (before.fingerprint, after.fingerprint)]
    assert verdict.environment[0] == f"model changed (fingerprint {short[0]} -> {short[1]})"
    assert verdict.to_json_dict()["model_spec"] == spec
    # The comparison key still tells the two models apart: compare never pairs them.
    assert verdict.baseline.key != verdict.contender.key
    assert verdict.baseline.history_key == verdict.contender.history_key


def test_a_changed_model_as_fast_as_before_is_unchanged_and_still_says_it_changed(tmp_path):
    first, second = (resolve_model(str(conv_stack(tmp_path / f"v{n}.onnx", convs=n))) for n in (1, 2))
    with Store.open(tmp_path / "r.db") as store:
        for night, p50 in enumerate((2.0, 2.01, 1.99)):
            nightly(store, first, p50, seed=night, spec="net.onnx")
        nightly(store, second, 2.0, seed=9, spec="net.onnx")
        (verdict,) = regress(store).verdicts
    assert verdict.outcome == "unchanged"
    assert verdict.environment[0].startswith("model changed (fingerprint ")


def test_files_of_one_name_in_two_directories_keep_two_histories(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = resolve_model(str(conv_stack(tmp_path / "a" / "net.onnx", convs=1)))
    b = resolve_model(str(conv_stack(tmp_path / "b" / "net.onnx", convs=2)))
    assert a.name == b.name  # the premise: the display name alone would merge them
    with Store.open(tmp_path / "r.db") as store:
        nightly(store, a, 2.0, seed=1, spec="a/net.onnx")
        nightly(store, b, 2.0, seed=2, spec="b/net.onnx")
        (verdict,) = regress(store).verdicts
    assert verdict.outcome == "new"


def test_records_from_before_model_spec_keep_their_fingerprint_in_the_key(tmp_path):
    path = tmp_path / "store.db"
    shutil.copy(DATA / "store-v3.db", path)  # two nights of one file, the second with another fingerprint
    with Store.open(path, create=False) as store:
        records = store.records()
        (verdict,) = regress(store).verdicts
    assert [record.model_spec for record in records] == [None, None]
    assert len({record.model_fingerprint for record in records}) == 2
    assert verdict.outcome == "new"

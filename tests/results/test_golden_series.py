"""The nightly golden pairing (`regress --golden-all`, a suite's `golden_every_night`): every key
measured paired against the golden run's file each night, its ratio kept marked in the store, and
change points over each key's series of those ratios.

The pairing runs real `edgebench run --suite` nights of tiny ONNX models and real paired workers,
as tests/results/test_confirm.py does; the series and its change points are checked on records
built in the store, no measurement."""

from __future__ import annotations

import dataclasses
import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from edgebench.errors import UsageError
from edgebench.results.change_points import regress_histories
from edgebench.results.confirm import GOLDEN_MARK, TAGS, confirm, golden_records
from edgebench.results.golden_series import golden_histories, stored_ratios
from edgebench.results.regress import regress
from edgebench.results.store import Store
from edgebench.session import run_session
from edgebench.sweep.paired import Pairing
from edgebench.sweep.suite import load_suite

from nightly_suite import FAST, suite_file
from onnx_models import conv_stack
from records import ENV, add_run, synthetic_record


def marked(records, role="contender"):
    """The records carrying a golden ratio, by the model spec they measured."""
    return {r.env["confirm"]["model_spec"]: r for r in records
            if GOLDEN_MARK in r.env["confirm"] and r.env["pairing"]["role"] == role}


# Measured: every key paired with the golden run, its records marked


def test_every_key_is_paired_with_the_golden_run_each_night_and_its_ratio_is_kept(cli, tmp_path):
    conv_stack("a.onnx", convs=1, channels=8, size=16)
    conv_stack("b.onnx", convs=2, channels=8, size=16)
    ran = cli("run", "--suite", str(suite_file(tmp_path, "")), "--store", "r.db", *FAST)
    assert ran.returncode == 0, ran.stderr
    with Store.open(tmp_path / "r.db", create=False) as store:
        (golden,) = store.runs()
    suite = suite_file(tmp_path, f'confirm = true\nconfirm_sessions = 1\nconfirm_rounds = 3\ngolden = "{golden.id}"\n'
                                 "confirm_block_time = 0.01\ngolden_every_night = true\n")
    ran = cli("run", "--suite", str(suite), "--store", "r.db", *FAST)
    assert ran.returncode == 0, ran.stderr
    result = cli("regress", "--suite", str(suite), "--store", "r.db", "--json",
                 "--markdown", "summary.md", "--junit", "r.xml")
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert result.returncode == (1 if report["failed"] else 0)  # the pairing never fails the build by itself
    tonight = report["contender_run"]
    # Each key has tonight's golden ratio: from the golden pairing, or from its confirmation's golden side.
    paired = {p["key"]["model_identity"][0]: p for p in report["confirm"]["golden_pairings"]}
    confirmed = {v["model_spec"] for v in report["verdicts"] if (v["confirmation"] or {}).get("golden_ratio")}
    assert set(paired) | confirmed == {"a.onnx", "b.onnx"} and not set(paired) & confirmed
    assert all(p["golden_run"] == golden.id and p["ratio"]["rounds"] == 3 for p in paired.values())

    with Store.open(tmp_path / "r.db", create=False) as store:
        (run,) = [info for info in store.runs() if info.tags == TAGS]
        records = store.records(run.id)
        judged = {r.model_spec: r for r in store.records(tonight)}
        ratios = stored_ratios(store, store.runs())
    marks = marked(records)
    assert set(marks) == {"a.onnx", "b.onnx"}
    for spec, record in marks.items():
        mark = record.env["confirm"][GOLDEN_MARK]
        assert record.method == "paired" and record.env["confirm"]["contender_run"] == tonight
        assert mark["golden_run"] == golden.id and record.env["confirm"]["aa"] is False
        golden_run, ratio = ratios[(tonight, judged[spec].history_key)]  # read back under the judged key
        assert golden_run == golden.id and math.isclose(ratio, mark["ratio"]["ratio"]) and ratio > 0
    # The golden pairing's reference side is the golden run's kept file of the key.
    references = marked(records, role="golden")
    assert {spec: r.model_fingerprint for spec, r in references.items() if spec in paired} == {
        spec: judged[spec].model_fingerprint for spec in paired}

    histories = {h["key"]["model_identity"][0]: h for h in report["histories"]}
    for history in histories.values():
        assert history["golden_ratio"]["golden_run"] == golden.id and history["golden_ratio"]["points"] == 1
        assert history["points"] == 2  # the p50 part as before
    cases = {case.get("classname"): ET.tostring(case, encoding="unicode")
             for case in ET.parse(tmp_path / "r.xml").iter("testcase")}
    assert all(f"golden pairing: ratio {p['ratio']['ratio']:.3f}" in cases[f"edgebench.{spec}"]
               for spec, p in paired.items())
    assert f"### Golden pairing ({len(paired)} key(s) without a golden ratio from a confirmation" in (
        tmp_path / "summary.md").read_text() or not paired


def test_a_confirmed_key_marks_its_pooled_golden_ratio_and_is_not_paired_again(cli, tmp_path):
    conv_stack("a.onnx", convs=1, channels=8, size=16)
    conv_stack("b.onnx", convs=2, channels=8, size=16)
    for _ in range(2):
        ran = cli("run", "--suite", str(suite_file(tmp_path, "")), "--store", "r.db", *FAST)
        assert ran.returncode == 0, ran.stderr
    with Store.open(tmp_path / "r.db", create=False) as store:
        report = regress(store)
        golden_run = store.runs()[-1].id
        pinned = golden_records(store, golden_run, "sweep")
    # a.onnx is suspected whatever tonight measured; b.onnx is not.
    verdicts = [dataclasses.replace(v, outcome="regression" if v.contender.model_spec == "a.onnx" else "unchanged",
                                    significance=None) for v in report.verdicts]
    forced = dataclasses.replace(report, verdicts=verdicts)
    with run_session(tmp_path / "r.db", tags=TAGS) as session:
        confirmed = confirm(forced, session, sessions=2, pairing=Pairing(3, 0.01), golden=pinned, golden_all=True)
    (confirmation,) = confirmed.confirmations.values()
    assert confirmation.golden is not None and confirmation.golden_run == golden_run
    assert [p.verdict.contender.model_spec for p in confirmed.golden_pairings.values()] == ["b.onnx"]
    with Store.open(tmp_path / "r.db", create=False) as store:
        records = store.records(confirmed.run_id)
    marks = marked(records)
    assert set(marks) == {"a.onnx", "b.onnx"}
    a_mark = marks["a.onnx"].env["confirm"]
    assert a_mark["look"]["final"] and a_mark["session"] == confirmation.sessions  # on the session that ended it
    assert a_mark[GOLDEN_MARK]["ratio"]["ratio"] == pytest.approx(confirmation.golden.ratio)
    assert a_mark[GOLDEN_MARK]["ratio"]["rounds"] == 3 * confirmation.sessions  # pooled over the sessions
    assert marks["b.onnx"].env["confirm"].get("look") is None  # a pairing, not a confirmation


# Read back: the series in night order, and its change points


def build_nights(store: Store, ratios: list[float], p50_sd: float = 0.13) -> list:
    """A night per ratio: a sweep record of a.onnx at a noisy p50 (13%, as this machine's nights),
    then a confirmation run marking that night's golden ratio."""
    rng = np.random.default_rng(7)
    nights = []
    for index, ratio in enumerate(ratios):
        p50 = 2.0 * float(np.exp(rng.normal(0.0, p50_sd)))
        night = add_run(store, lambda run_id, started, p50=p50, index=index: [synthetic_record(
            run_id, p50, seed=index, created_at=started, model="a.onnx", model_spec="a.onnx", process_sd=0.003)])
        (judged,) = store.records(night.id)
        golden = nights[0].id if nights else night.id
        pair_night(store, judged, golden, ratio)
        nights.append(night)
    return nights


def pair_night(store: Store, judged, golden_run: str, ratio: float) -> None:
    confirm = {"contender_run": judged.run_id, "reference_run": golden_run, "model_spec": "a.onnx", "session": 1,
               "aa": False, GOLDEN_MARK: {"golden_run": golden_run, "key": list(judged.history_key),
                                          "ratio": {"ratio": ratio, "ci95": [ratio * 0.99, ratio * 1.01], "rounds": 4}}}
    add_run(store, lambda run_id, started: [
        synthetic_record(run_id, 2.0 * ratio, created_at=started, model="a.onnx", method="paired", process_sd=0.003,
                         env={**ENV, "pairing": {"role": role}, "confirm": confirm})
        for role in ("golden", "contender")], tags=TAGS)


STEP_AT = 8  # the first night of the slower level


def stepped(nights: int = 14, step: float = 0.05) -> list[float]:
    rng = np.random.default_rng(3)
    return [(1.0 if night < STEP_AT else 1.0 + step) * (1.0 + 0.01 * rng.standard_normal()) for night in range(nights)]


def test_the_series_is_read_back_in_night_order_and_a_5_percent_step_is_dated_at_its_first_night(tmp_path):
    ratios = stepped()
    with Store.open(tmp_path / "r.db") as store:
        nights = build_nights(store, ratios)
        report = regress(store)
        histories = regress_histories(store, report)
        series = golden_histories(store, store.runs(), histories)
    ((key, golden),) = series.items()
    assert golden.golden_run == nights[0].id
    assert [r.run_id for r in golden.history.records] == [night.id for night in nights]
    assert golden.history.values == pytest.approx(ratios)
    (point,) = golden.history.points
    assert point.record.run_id == nights[STEP_AT].id and point.change == pytest.approx(0.05, abs=0.015)
    assert point.p_value <= 0.001
    # The premise: a 5% step in the ratio is within the p50 series' night-to-night noise.
    assert np.std(np.log(histories[key].values)) > 0.05


def test_a_night_paired_twice_counts_by_its_latest_pairing_and_another_golden_run_is_left_out(tmp_path):
    with Store.open(tmp_path / "r.db") as store:
        nights = build_nights(store, [1.0, 1.01, 0.99])
        (third,) = store.records(nights[2].id)
        pair_night(store, third, nights[0].id, 1.2)  # the same night paired again: this one counts
        (second,) = store.records(nights[1].id)
        pair_night(store, second, "another-golden", 0.5)  # a ratio to another model: not this series
        report = regress(store)
        histories = regress_histories(store, report)
        (series,) = golden_histories(store, store.runs(), histories).values()
        (named,) = golden_histories(store, store.runs(), histories, "another-golden").values()
    assert series.golden_run == nights[0].id and series.history.values == pytest.approx([1.0, 1.2])
    assert [r.run_id for r in series.history.records] == [nights[0].id, nights[2].id]
    assert named.history.values == [0.5]  # the golden run named picks its own series


def test_regress_shows_the_golden_ratio_change_points_beside_the_p50_ones(cli, tmp_path):
    with Store.open(tmp_path / "r.db") as store:
        nights = build_nights(store, stepped())
    result = cli("regress", "--store", "r.db", "--json", "--markdown", "summary.md", "--junit", "r.xml")
    assert "Traceback" not in result.stderr
    (history,) = json.loads(result.stdout)["histories"]
    assert history["points"] == len(nights) and "change_points" in history  # the p50 part as it was
    golden = history["golden_ratio"]
    assert golden["golden_run"] == nights[0].id and golden["points"] == len(nights)
    (point,) = golden["change_points"]
    assert point["run_id"] == nights[STEP_AT].id and point["change"] == pytest.approx(0.05, abs=0.015)
    summary = (tmp_path / "summary.md").read_text()
    section = summary.split(f"#### The paired ratio against golden run {nights[0].id}")[1]
    assert section.startswith(" (1 of 1 keys with 6 or more paired nights searched)")
    assert any(line.startswith("| a.onnx") and nights[STEP_AT].id in line for line in section.splitlines())
    out = ET.parse(tmp_path / "r.xml").find(".//testcase/system-out").text
    assert f"golden ratio change point (run {nights[0].id}): run {nights[STEP_AT].id}" in out
    table = " ".join(cli("regress", "--store", "r.db").stdout.split())  # rich wraps at the terminal's width
    assert f"change point of the ratio to golden run {nights[0].id} at run {nights[STEP_AT].id}" in table
    made = cli("report", "--store", "r.db", "--out", "report")
    assert made.returncode == 0, made.stderr
    page = (tmp_path / "report" / "index.html").read_text()
    assert f"Change point of the ratio to golden run {nights[0].id} for" in page


# Bad settings: one line


@pytest.mark.parametrize("table, message", [
    ('confirm = true\ngolden_every_night = true\n',
     'golden_every_night pairs every key with the golden run: set golden = "RUN"'),
    ('golden = "20261001"\ngolden_every_night = true\n',
     "golden and golden_every_night measure keys paired, as confirmation does: set confirm = true"),
    ('confirm = true\ngolden = "20261001"\ngolden_every_night = "often"\n',
     "field regress.golden_every_night: Input should be a valid boolean"),
])
def test_bad_golden_series_settings_name_the_field_in_one_line(tmp_path, table, message):
    with pytest.raises(UsageError) as error:
        load_suite(suite_file(tmp_path, table))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_golden_every_night_is_read(tmp_path):
    settings = load_suite(suite_file(tmp_path, 'confirm = true\ngolden = "20261001"\ngolden_every_night = true\n'))
    assert settings.regress.golden_every_night is True
    assert load_suite(suite_file(tmp_path, "")).regress.golden_every_night is False


def test_golden_all_needs_golden_and_confirm_and_is_refused_with_a_suite(cli, tmp_path):
    with Store.open(tmp_path / "r.db") as store:
        build_nights(store, [1.0])
    without_golden = cli("regress", "--store", "r.db", "--confirm", "--golden-all")
    assert without_golden.returncode == 2 and "Traceback" not in without_golden.stderr
    assert without_golden.stderr.strip().splitlines()[-1].endswith("--golden-all pairs every key with the golden "
                                                                   "run; add --golden RUN")
    without_confirm = cli("regress", "--store", "r.db", "--golden-all")
    assert without_confirm.returncode == 2 and "--golden-all measures keys paired, for --confirm; add --confirm" in (
        without_confirm.stderr)
    with_suite = cli("regress", "--store", "r.db", "--suite", str(suite_file(tmp_path, "")), "--golden-all")
    assert with_suite.returncode == 2 and with_suite.stderr.strip().endswith("leave out --golden-all")

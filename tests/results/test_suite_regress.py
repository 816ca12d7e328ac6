"""`regress --suite`: a suite's [regress] table judges its latest run (per-model rules, confirmation
settings), and A/A calibration: keys confirmed against themselves, their rate kept in the store.

Rules and rates are checked on records built here; the A/A check itself runs real `edgebench run
--suite` nights of a tiny ONNX model and real paired workers, as tests/results/test_confirm.py does."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import pytest
from scipy import stats as scipy_stats

from edgebench.errors import UsageError
from edgebench.results.calibration import Check, aa_keys, calibration, night_number, stored_checks
from edgebench.results.confirm import TAGS, Confirmation, ConfirmReport
from edgebench.results.record import Artifact
from edgebench.results.regress import judge, regress
from edgebench.results.store import Store
from edgebench.sweep.suite import load_suite

from nightly_suite import FAST, suite_file
from onnx_models import conv_stack
from records import add_run, synthetic_record

STEADY = dict(process_sd=0.003, sample_sd=0.03)


def night(store: Store, p50s: dict[str, float], index: int, suite: str | None = "nightly"):
    """A run of the suite: a record of each model spec at the given p50."""
    return add_run(store, lambda run_id, started: [
        synthetic_record(run_id, p50, seed=10 * index + offset, created_at=started, model=spec, model_spec=spec,
                         **STEADY)
        for offset, (spec, p50) in enumerate(p50s.items())], tags={"suite": suite} if suite else None)


# The suite's rules


def test_each_model_is_judged_by_its_own_rule_and_the_latest_suite_run_is_judged(cli, tmp_path):
    with Store.open(tmp_path / "r.db") as store:
        for index, level in enumerate([2.0, 2.02, 1.98, 2.01]):
            night(store, {"a.onnx": level, "b.onnx": level}, index)
        judged = night(store, {"a.onnx": 2.3, "b.onnx": 2.3}, 4)  # both 15% slower
        night(store, {"c.onnx": 1.0}, 5, suite=None)  # a later run outside the suite: not the one judged
    suite = suite_file(tmp_path, 'threshold = 0.05\n[regress.models."b.onnx"]\nthreshold = 0.2\n')
    result = cli("regress", "--suite", str(suite), "--store", "r.db", "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["contender_run"] == judged.id
    verdicts = {v["model_spec"]: v for v in report["verdicts"]}
    assert verdicts["a.onnx"]["outcome"] == "regression" and verdicts["a.onnx"]["threshold"] == 0.05
    # The looser model: the same slowdown is within its threshold.
    assert verdicts["b.onnx"]["outcome"] == "unchanged" and verdicts["b.onnx"]["threshold"] == 0.2
    assert "within the 20% threshold" in verdicts["b.onnx"]["reason"]
    assert report["rules"] == {"b.onnx": {"metric": "p50", "threshold": 0.2}}
    # Without the suite, one threshold judges both.
    plain = json.loads(cli("regress", "--store", "r.db", "--json", "--contender", judged.id).stdout)
    assert {v["model_spec"]: v["outcome"] for v in plain["verdicts"]} == {"a.onnx": "regression",
                                                                          "b.onnx": "regression"}
    table = cli("regress", "--suite", str(suite), "--store", "r.db").stdout
    assert "b.onnx: p50, 20%" in table  # the summary names the override


def test_a_per_model_metric_judges_that_model_by_it(tmp_path):
    with Store.open(tmp_path / "r.db") as store:
        for index in range(4):
            night(store, {"a.onnx": 2.0, "b.onnx": 2.0}, index)
        night(store, {"a.onnx": 2.0, "b.onnx": 2.0}, 4)
        suite = load_suite(suite_file(tmp_path, '[regress.models."b.onnx"]\nmetric = "p99"\n'))
        report = regress(store, rules=suite.regress_rules())
    assert {v.contender.model_spec: v.rule.metric for v in report.verdicts} == {"a.onnx": "p50", "b.onnx": "p99"}
    assert next(v for v in report.verdicts if v.contender.model_spec == "b.onnx").reason.startswith("p99 ")


def test_options_the_suite_sets_are_refused_in_one_line(cli, tmp_path):
    with Store.open(tmp_path / "r.db") as store:
        night(store, {"a.onnx": 2.0}, 0)
    suite = suite_file(tmp_path, "threshold = 0.05\n")
    result = cli("regress", "--suite", str(suite), "--store", "r.db", "--threshold", "0.1", "--confirm",
                 "--block-time", "0.02")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("leave out --threshold, --confirm, --block-time")
    assert "Traceback" not in result.stderr
    # Options the suite does not set go along with it.
    assert cli("regress", "--suite", str(suite), "--store", "r.db", "--markdown", "summary.md").returncode == 0


def test_a_suite_without_runs_and_a_contender_outside_it_are_usage_errors(cli, tmp_path):
    with Store.open(tmp_path / "r.db") as store:
        other = night(store, {"a.onnx": 2.0}, 0, suite="other")
    suite = suite_file(tmp_path, "")
    absent = cli("regress", "--suite", str(suite), "--store", "r.db")
    assert absent.returncode == 2 and "no run of suite nightly holds sweep records" in absent.stderr
    outside = cli("regress", "--suite", str(suite), "--store", "r.db", "--contender", other.id)
    assert outside.returncode == 2 and f"run {other.id} is not a run of suite nightly" in outside.stderr


@pytest.mark.parametrize("table, message", [
    ("confirm = true\naa_share = 1.5\n", "field regress.aa_share: Value error, the A/A share is a fraction"),
    ("confirm = true\naa_share = -0.1\n", "not -0.1"),
    ("aa_share = 0.1\n", "aa_share measure keys paired, as confirmation does: set confirm = true"),
    ('golden = "20261001"\n', "golden measure keys paired"),
    ('confirm = true\ngolden = ""\n', "field regress.golden: String should have at least 1 character"),
    ("confirm = true\nconfirm_sessions = 0\n", "field regress.confirm_sessions: Input should be greater than 0"),
    ("confirm = true\nconfirm_rounds = 1\n", "field regress.confirm_rounds: Input should be greater than or equal"),
    ("confirm = true\nconfirm_block_time = 0.001\n",
     "field regress.confirm_block_time: Input should be greater than or equal"),
    ('confirm = "often"\n', "field regress.confirm: Input should be a valid boolean"),
    ("confirm_round = 3\n", "field regress.confirm_round: Extra inputs are not permitted"),
])
def test_bad_confirmation_settings_name_the_field_in_one_line(tmp_path, table, message):
    path = suite_file(tmp_path, table)
    with pytest.raises(UsageError) as error:
        load_suite(path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_suite_confirmation_settings_are_read(tmp_path):
    settings = load_suite(suite_file(tmp_path, 'confirm = true\nconfirm_sessions = 4\nconfirm_rounds = 6\n'
                                                'confirm_block_time = 0.02\ngolden = "20261001"\naa_share = 0.25\n')).regress
    assert (settings.confirm, settings.confirm_sessions, settings.confirm_rounds, settings.confirm_block_time,
            settings.golden, settings.aa_share) == (True, 4, 6, 0.02, "20261001", 0.25)
    defaults = load_suite(suite_file(tmp_path, "")).regress
    assert (defaults.confirm, defaults.confirm_sessions, defaults.confirm_rounds, defaults.confirm_block_time,
            defaults.aa_share) == (False, 3, 200, 0.01, 0.0)


def test_aa_share_on_the_command_line_is_checked_and_needs_confirm(cli, tmp_path):
    with Store.open(tmp_path / "r.db") as store:
        night(store, {"a.onnx": 2.0}, 0)
    bad = cli("regress", "--store", "r.db", "--confirm", "--aa-share", "2")
    assert bad.returncode == 2 and "--aa-share: the A/A share is a fraction of the keys from 0 to 1" in bad.stderr
    alone = cli("regress", "--store", "r.db", "--aa-share", "0.5")
    assert alone.returncode == 2 and "add --confirm" in alone.stderr


# Which keys are checked against themselves


def kept(record, name="m.onnx"):
    return record.model_copy(update={"artifacts": [Artifact(role="model", name=name, digest="sha256:" + "0" * 64,
                                                            size=1)]})


def report_of(tmp_path, specs: list[str], unkept: tuple[str, ...] = ()):
    with Store.open(tmp_path / "keys.db") as store:
        add_run(store, lambda run_id, started: [
            (lambda record: record if spec in unkept else kept(record))(
                synthetic_record(run_id, 2.0, seed=i, created_at=started, model=spec, model_spec=spec, **STEADY))
            for i, spec in enumerate(specs)])
        return regress(store)


def test_the_aa_share_picks_its_number_of_keys_and_every_key_takes_its_turn(tmp_path):
    specs = [f"m{index}.onnx" for index in range(7)]
    report = report_of(tmp_path, [*specs, "code.eager"], unkept=("code.eager",))
    assert len(aa_keys(report, 0.0, 0)) == 0
    assert len(aa_keys(report, 0.01, 0)) == 1  # at least one key
    assert len(aa_keys(report, 0.3, 0)) == 3  # ceil(0.3 x 7)
    assert len(aa_keys(report, 1.0, 5)) == 7
    nights = [{v.contender.model_spec for v in aa_keys(report, 0.3, n)} for n in range(3)]
    assert all(len(chosen) == 3 for chosen in nights)
    assert set().union(*nights) == set(specs)  # within ceil(7 / 3) nights, every key; never the unkept one
    assert nights[0] != nights[1] and aa_keys(report, 0.3, 1) == aa_keys(report, 0.3, 1)
    # The order follows the keys, not the report's order: a key added moves the others little.
    (tmp_path / "grown").mkdir()
    grown = report_of(tmp_path / "grown", [*specs, "m7.onnx"])
    order = [v.contender.model_spec for v in aa_keys(grown, 1.0, 0)]
    assert [spec for spec in order if spec != "m7.onnx"] == [v.contender.model_spec for v in aa_keys(report, 1.0, 0)]


def test_the_night_counts_the_suites_earlier_runs(tmp_path):
    with Store.open(tmp_path / "r.db") as store:
        first = night(store, {"a.onnx": 2.0}, 0)
        night(store, {"a.onnx": 2.0}, 1, suite="other")
        night(store, {"a.onnx": 2.0}, 2, suite=None)
        third = night(store, {"a.onnx": 2.0}, 3)
        runs = store.runs()
    assert night_number(runs, first, "sweep", "nightly") == 0
    assert night_number(runs, third, "sweep", "nightly") == 1
    assert night_number(runs, third, "sweep") == 3  # without a suite: every earlier run of the method


# The rate from the store


def aa_record(run_id, started, contender_run, outcome, *, final=True, role="contender", aa=True):
    confirm = {"contender_run": contender_run, "reference_run": contender_run, "model_spec": "a.onnx", "session": 1,
               "aa": aa, "look": {"outcome": outcome, "ratio": {"ratio": 1.0, "ci95": [0.99, 1.01], "rounds": 4},
                                  "p_value": 0.5, "final": final}}
    return synthetic_record(run_id, 2.0, created_at=started, model="a.onnx", method="paired", **STEADY,
                            env={**synthetic_record().env, "pairing": {"role": role}, "confirm": confirm})


def test_the_history_rate_counts_each_stored_aa_check_once(tmp_path):
    with Store.open(tmp_path / "r.db") as store:
        first, second = night(store, {"a.onnx": 2.0}, 0), night(store, {"a.onnx": 2.0}, 1)
        other = night(store, {"a.onnx": 2.0}, 2, suite="other")
        outcomes = {first.id: ["regression", "same", "undecided"], second.id: ["same", "regression"],
                    other.id: ["regression"]}
        for judged, found in outcomes.items():
            add_run(store, lambda run_id, started, judged=judged, found=found: [
                *(aa_record(run_id, started, judged, outcome) for outcome in found),
                aa_record(run_id, started, judged, "regression", role="reference"),  # the other side of a check
                aa_record(run_id, started, judged, "regression", final=False),  # a look that did not end a check
                aa_record(run_id, started, judged, "regression", aa=False)], tags=TAGS)  # a real confirmation
        runs = store.runs()
        assert len(stored_checks(store, runs, "nightly")) == 5
        calibrated = calibration(store, runs, second.id, "nightly")
        everything = calibration(store, runs, second.id)
    assert (calibrated.history.regressions, calibrated.history.checks) == (2, 5)
    assert (calibrated.tonight.regressions, calibrated.tonight.checks) == (1, 2)
    assert all(isinstance(check, Check) and check.contender_run == second.id for check in calibrated.checks)
    assert (everything.history.regressions, everything.history.checks) == (3, 6)  # every suite's checks
    expected = scipy_stats.binomtest(2, 5).proportion_ci(0.95, method="exact")
    assert calibrated.history.interval == pytest.approx((expected.low, expected.high))
    assert calibrated.history.rate == pytest.approx(0.4)
    assert "2 of 5 A/A check(s) called regression: 40.0%" in str(calibrated.history)


def test_an_aa_regression_does_not_fail_the_build_but_is_shown(tmp_path):
    from edgebench.cli.regress_output import AAReport, junit_xml, markdown_summary

    report = report_of(tmp_path, ["a.onnx"])
    (verdict,) = report.verdicts
    check = Confirmation(verdict, "regression", "ratio 1.2 over 4 rounds: slower by more than 5%", p_value=0.001,
                         adjusted_p=0.001, sessions=1)
    confirmed = ConfirmReport("confirm-run", 2, 4, {}, {check.key: check})
    assert not confirmed.failed(report)
    with Store.open(tmp_path / "keys.db", create=False) as store:
        aa = AAReport(0.5, 3, 1, calibration(store, store.runs(), "confirm-run"))
    suite = ET.fromstring(junit_xml(report, {}, confirmed, aa)).find("testsuite")
    assert suite.get("failures") == "0" and suite.get("tests") == "2"
    case = suite.find("testcase[@name='A/A calibration']")
    assert case.find("failure") is None and "A/A regression" in case.find("system-out").text
    markdown = markdown_summary(report, {}, confirmed, aa)
    assert "### A/A calibration (1 of 1 key(s) measured against themselves, share 50%, night 3" in markdown
    assert "| regression | - | 0.001 | 1 |" in markdown.split("### A/A calibration")[1]


# A real A/A check, end to end


def test_an_aa_check_measures_the_kept_file_against_itself_and_its_rate_is_reported(cli, tmp_path):
    conv_stack("net.onnx", convs=2, channels=16, size=32)
    matrix = '[matrix]\nmodels = ["net.onnx"]\nbackends = ["onnxruntime"]\n'
    suite = suite_file(tmp_path, "confirm = true\nconfirm_sessions = 2\nconfirm_rounds = 3\nconfirm_block_time = 0.01\n"
                                 "aa_share = 1.0\n", matrix=matrix)
    for _ in range(2):
        ran = cli("run", "--suite", str(suite), "--store", "r.db", *FAST)
        assert ran.returncode == 0, ran.stderr
    result = cli("regress", "--suite", str(suite), "--store", "r.db", "--json", "--markdown", "summary.md",
                 "--junit", "r.xml")
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["confirm"]["sessions"] == 2 and report["confirm"]["rounds"] == 3  # the suite's settings
    calibrated = report["aa_calibration"]
    (check,) = calibrated["checks"]
    assert check["outcome"] in ("same", "undecided", "regression", "improvement"), check["reason"]
    assert check["ratio"]["rounds"] in (3, 6)
    assert calibrated["tonight"]["checks"] == 1 and calibrated["history"]["checks"] == 1
    assert calibrated["suite"] == "nightly" and calibrated["night"] == 1
    # The build fails only as the real keys say: never because of the A/A check.
    assert result.returncode == (1 if report["failed"] else 0)

    with Store.open(tmp_path / "r.db", create=False) as store:
        (run,) = [info for info in store.runs() if info.tags == TAGS]
        records = store.records(run.id)
        (judged,) = store.records(report["contender_run"])
    aa = [r for r in records if r.env["confirm"]["aa"]]
    assert {r.env["pairing"]["role"] for r in aa} == {"reference", "contender"}
    assert {r.env["confirm"]["reference_run"] for r in aa} == {report["contender_run"]}
    # The premise: both sides measured tonight's kept file, byte for byte.
    (kept_file,) = [a for a in judged.artifacts if a.role == "model"]
    assert {r.model_fingerprint for r in aa} == {kept_file.digest}
    final = [r for r in aa if r.env["confirm"]["look"]["final"] and r.env["pairing"]["role"] == "contender"]
    assert [r.env["confirm"]["look"]["outcome"] for r in final] == [check["outcome"]]

    summary = (tmp_path / "summary.md").read_text()
    assert "### A/A calibration (1 of 1 key(s)" in summary and "- history (suite nightly" in summary
    properties = {p.get("name"): p.get("value") for p in ET.parse(tmp_path / "r.xml").iter("property")}
    assert properties["aa_tonight_checks"] == "1" and properties["aa_history_checks"] == "1"
    low, high = float(properties["aa_history_ci95_low"]), float(properties["aa_history_ci95_high"])
    assert 0 <= low < high <= 1 and math.isclose(high - low, 0.975, abs_tol=0.03)

    made = cli("report", "--store", "r.db", "--out", "report")
    assert made.returncode == 0, made.stderr
    page = (tmp_path / "report" / "index.html").read_text()
    assert '<section id="calibration">' in page and "of suite nightly" in page

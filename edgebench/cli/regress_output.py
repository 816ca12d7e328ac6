"""What ``edgebench regress`` prints and writes: the verdicts table, JSON, Markdown and JUnit, with
the paired confirmations, A/A calibration, golden pairings and change points beside them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Optional

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgebench.cli.render import boards, markdown_cell
from edgebench.results.calibration import Calibration
from edgebench.results.change_points import MIN_POINTS, ChangePoint, History
from edgebench.results.compare import key_text
from edgebench.results.confirm import Confirmation, ConfirmReport, GoldenPairing
from edgebench.results.golden_series import GoldenHistory
from edgebench.results.key import HISTORY_FIELDS
from edgebench.results.regress import OUTCOMES, RegressReport, Verdict
from edgebench.results.record import Record

OUTCOME_STYLES = {"regression": "red", "failed": "red", "improvement": "green", "unchanged": "", "new": "cyan",
                  "same": "", "undecided": "yellow"}


@dataclass(frozen=True)
class AAReport:
    """The A/A calibration shown beside the verdicts: tonight's checks are ``ConfirmReport.aa``."""

    share: float
    night: int  # the rotation's night number (results.calibration)
    eligible: int  # keys that could be checked
    calibration: Calibration

    def to_json_dict(self, confirmed: ConfirmReport) -> dict:
        return {"share": self.share, "night": self.night, "eligible_keys": self.eligible,
                **self.calibration.to_json_dict(),
                "checks": [{"key": dict(zip(HISTORY_FIELDS, key)), **check.to_json_dict()}
                           for key, check in confirmed.aa.items()]}


def report_json(report: RegressReport, histories: Mapping[tuple, History],
                 confirmed: Optional[ConfirmReport], aa: Optional[AAReport] = None,
                 golden: Mapping[tuple, GoldenHistory] = MappingProxyType({})) -> dict:
    result = {**report.to_json_dict(), "histories": _histories_json(histories, golden)}
    if confirmed is None:
        return result
    for verdict, shown in zip(report.verdicts, result["verdicts"]):
        confirmation = confirmed.confirmations.get(verdict.contender.history_key)
        shown["confirmation"] = confirmation.to_json_dict() if confirmation else None
    calibrated = {"aa_calibration": aa.to_json_dict(confirmed)} if aa is not None else {}
    return {**result, "failed": confirmed.failed(report), "confirm": confirmed.to_json_dict(), **calibrated}


def summary_line(report: RegressReport) -> str:
    counts = report.counts()
    figures = ", ".join(f"{counts[outcome]} {outcome}" for outcome in OUTCOMES)
    scope = f", {report.scope}" if report.scope else ""
    overrides = "".join(f"; {model}: {rule.metric}, {rule.threshold:.0%}" for model, rule in report.rules.items())
    return (f"{figures} ({report.method} records, {report.metric}, threshold {report.threshold:.0%}{overrides}, "
            f"alpha {report.alpha:g}; contender run {report.contender_run.id}{scope})")


def junit_xml(report: RegressReport, histories: Mapping[tuple, History] = MappingProxyType({}),
              confirmed: Optional[ConfirmReport] = None, aa: Optional[AAReport] = None,
              golden: Mapping[tuple, GoldenHistory] = MappingProxyType({})) -> str:
    """One testsuite, one testcase per key: failure = regression (with ``confirmed``: as the paired
    verdicts decide), error = failed measurement, skipped = no baseline; the figures, environment
    changes, the paired verdict, tonight's golden pairing and the key's change points across its
    history (p50 and ``golden`` ratio) in each testcase's system-out (a failure's text). With
    ``aa``: the A/A rates as properties, and one more testcase, never failing, with tonight's checks
    in its system-out."""
    counts = report.counts()
    failures = sum(1 for verdict in report.verdicts if _fails(verdict, confirmed))
    totals = {"tests": str(len(report.verdicts) + (aa is not None)), "failures": str(failures),
              "errors": str(counts["failed"]), "skipped": str(counts["new"]), "time": "0"}
    run = report.contender_run
    suites = ET.Element("testsuites", name="edgebench regress", **totals)
    suite = ET.SubElement(suites, "testsuite", name=f"edgebench regress {report.metric}", **totals,
                          timestamp=run.started_at[:19], hostname=run.host)
    properties = ET.SubElement(suite, "properties")
    for name, value in (("contender_run", run.id), ("git_commit", run.git_commit or ""), ("method", report.method),
                        ("metric", report.metric),
                        ("threshold", report.threshold), ("alpha", report.alpha), *_aa_properties(aa)):
        ET.SubElement(properties, "property", name=name, value=str(value))
    for verdict in report.verdicts:
        _testcase(suite, report, verdict, histories.get(verdict.contender.history_key), confirmed,
                  golden.get(verdict.contender.history_key))
    if aa is not None:
        case = ET.SubElement(suite, "testcase", classname="edgebench.calibration", name="A/A calibration", time="0")
        ET.SubElement(case, "system-out").text = "\n".join(_aa_lines(report, confirmed, aa))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _aa_properties(aa: Optional[AAReport]) -> list[tuple[str, object]]:
    if aa is None:
        return []
    tonight, history = aa.calibration.tonight, aa.calibration.history
    interval = history.interval or ("", "")
    return [("aa_share", aa.share), ("aa_tonight_regressions", tonight.regressions),
            ("aa_tonight_checks", tonight.checks), ("aa_history_regressions", history.regressions),
            ("aa_history_checks", history.checks),
            ("aa_history_rate", "" if history.rate is None else f"{history.rate:.4g}"),
            ("aa_history_ci95_low", f"{interval[0]:.4g}" if history.checks else ""),
            ("aa_history_ci95_high", f"{interval[1]:.4g}" if history.checks else "")]


def _fails(verdict: Verdict, confirmed: Optional[ConfirmReport]) -> bool:
    """A failure testcase: a regression, as the paired verdicts decide when there are any."""
    if verdict.outcome == "failed":
        return False  # an error testcase
    return confirmed.failing(verdict) if confirmed is not None else verdict.outcome == "regression"


def _testcase(suite: ET.Element, report: RegressReport, verdict: Verdict, history: History | None,
              confirmed: Optional[ConfirmReport], golden: GoldenHistory | None = None) -> None:
    record = verdict.contender
    case = ET.SubElement(suite, "testcase", classname=f"edgebench.{record.model}", name=_key(report, record),
                         time="0")
    confirmation = confirmed.confirmations.get(record.history_key) if confirmed is not None else None
    pairing = confirmed.golden_pairings.get(record.history_key) if confirmed is not None else None
    details = _details(verdict, history, confirmation, golden, pairing)
    if _fails(verdict, confirmed):
        message = f"paired {confirmation.outcome}: {confirmation.reason}" if confirmation else verdict.reason
        ET.SubElement(case, "failure", message=message, type="regression").text = details
        return
    if verdict.outcome == "failed":
        ET.SubElement(case, "error", message=verdict.reason, type="measurement-failed").text = record.error or ""
    elif verdict.outcome == "new":
        ET.SubElement(case, "skipped", message=verdict.reason)
    ET.SubElement(case, "system-out").text = details


def _details(verdict: Verdict, history: History | None, confirmation: Confirmation | None = None,
             golden: GoldenHistory | None = None, pairing: GoldenPairing | None = None) -> str:
    lines = [f"{verdict.outcome}: {verdict.reason}"]
    if confirmation is not None:
        lines.append(f"paired {confirmation.outcome}: {confirmation.reason}")
    if pairing is not None:
        lines.append(_pairing_text(pairing))
    if verdict.baseline is not None:
        lines.append(f"baseline run {verdict.baseline.run_id}, contender run {verdict.contender.run_id}")
    lines += [f"environment: {change}" for change in verdict.environment]
    lines += [f"change point: {_point_text(point)}" for point in (history.points if history else [])]
    lines += [f"golden ratio change point (run {golden.golden_run}): {_point_text(point)}"
              for point in (golden.history.points if golden else [])]
    return "\n".join(lines)


def _pairing_text(pairing: GoldenPairing) -> str:
    shown = f"ratio {pairing.ratio} to golden run {pairing.golden_run}" if pairing.ratio else "not measured"
    return f"golden pairing: {shown}" + (f"; {pairing.reason}" if pairing.reason else "")


def markdown_summary(report: RegressReport, histories: Mapping[tuple, History] = MappingProxyType({}),
                     confirmed: Optional[ConfirmReport] = None, aa: Optional[AAReport] = None,
                     golden: Mapping[tuple, GoldenHistory] = MappingProxyType({})) -> str:
    run = report.contender_run
    header = ["verdict", "key", "baseline ms", "contender ms", "change", "p", "detectable", "baseline run",
              "environment changes"]
    lines = [
        f"## edgebench regress: {summary_line(report)}",
        "",
        f"Contender run `{run.id}`" + (f" (git `{run.git_commit}`)" if run.git_commit else "") +
        f" on {run.host}. A key regresses when its {report.metric} rises by more than "
        f"{report.threshold:.0%} and the rise is significant at alpha {report.alpha:g}, counting worker "
        "processes, not samples, as the unit of noise.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(markdown_cell(cell) for cell in _cells(report, v)) + " |"
              for v in report.verdicts]
    lines += _markdown_confirmations(report, confirmed) if confirmed is not None else []
    lines += _markdown_aa(report, confirmed, aa) if aa is not None else []
    lines += _markdown_pairings(report, confirmed) if confirmed is not None and confirmed.golden_pairings else []
    lines += _markdown_change_points(report, histories, golden)
    return "\n".join(lines) + "\n"


CONFIRM_HEADER = ["key", "history", "paired", "ratio [95%]", "p (BH)", "sessions", "golden ratio [95%]"]


def _confirm_cells(report: RegressReport, confirmation: Confirmation) -> list[str]:
    golden = f"{confirmation.golden} (run {confirmation.golden_run})" if confirmation.golden else "-"
    return [_key(report, confirmation.verdict.contender), confirmation.verdict.outcome, confirmation.outcome,
            str(confirmation.ratio) if confirmation.ratio else "-",
            f"{confirmation.adjusted_p:.2g}" if confirmation.adjusted_p is not None else "-",
            str(confirmation.sessions), golden]


def _confirm_title(confirmed: ConfirmReport) -> str:
    run = f", records in run {confirmed.run_id}" if confirmed.run_id else ""
    return (f"Paired confirmation ({len(confirmed.confirmations)} suspected key(s); up to {confirmed.sessions} "
            f"session(s) of {confirmed.rounds} rounds, p Bonferroni over sessions then Benjamini-Hochberg{run})")


def _markdown_confirmations(report: RegressReport, confirmed: ConfirmReport) -> list[str]:
    lines = ["", f"### {_confirm_title(confirmed)}", ""]
    if not confirmed.confirmations:
        return lines + ["No key was suspected."]
    lines += ["| " + " | ".join(CONFIRM_HEADER) + " |", "|" + "---|" * len(CONFIRM_HEADER)]
    lines += ["| " + " | ".join(markdown_cell(cell) for cell in _confirm_cells(report, c)) + " |"
              for c in confirmed.confirmations.values()]
    return lines + [""] + [f"- {_key(report, c.verdict.contender)}: {c.outcome}: {c.reason}"
                           for c in confirmed.confirmations.values()]


AA_HEADER = ["key", "paired", "ratio [95%]", "p", "sessions"]


def _aa_title(aa: AAReport, confirmed: ConfirmReport) -> str:
    return (f"A/A calibration ({len(confirmed.aa)} of {aa.eligible} key(s) measured against themselves, share "
            f"{aa.share:.0%}, night {aa.night}; a measurement of the detector, never failing)")


def _aa_cells(report: RegressReport, check: Confirmation) -> list[str]:
    return [_key(report, check.verdict.contender), check.outcome, str(check.ratio) if check.ratio else "-",
            f"{check.p_value:.2g}" if check.p_value is not None else "-", str(check.sessions)]


def _aa_lines(report: RegressReport, confirmed: ConfirmReport, aa: AAReport) -> list[str]:
    """Each check, then tonight's rate and the history's."""
    whose = f"suite {aa.calibration.suite}" if aa.calibration.suite else "the store"
    return ([f"{_key(report, check.verdict.contender)}: A/A {check.outcome}: {check.reason}"
             for check in confirmed.aa.values()]
            + [f"tonight: {aa.calibration.tonight}",
               f"history ({whose}, tonight's included): {aa.calibration.history}"])


def _markdown_aa(report: RegressReport, confirmed: ConfirmReport, aa: AAReport) -> list[str]:
    lines = ["", f"### {_aa_title(aa, confirmed)}", ""]
    if confirmed.aa:
        lines += ["| " + " | ".join(AA_HEADER) + " |", "|" + "---|" * len(AA_HEADER)]
        lines += ["| " + " | ".join(markdown_cell(cell) for cell in _aa_cells(report, check)) + " |"
                  for check in confirmed.aa.values()]
        lines.append("")
    else:
        lines += ["No key kept an ONNX file to measure against itself.", ""]
    return lines + [f"- {line}" for line in _aa_lines(report, confirmed, aa)]


def _pairings_title(confirmed: ConfirmReport) -> str:
    return (f"Golden pairing ({len(confirmed.golden_pairings)} key(s) without a golden ratio from a confirmation, "
            f"one session of {confirmed.rounds} rounds each; never failing)")


def _markdown_pairings(report: RegressReport, confirmed: ConfirmReport) -> list[str]:
    return ["", f"### {_pairings_title(confirmed)}", ""] + [
        f"- {_key(report, pairing.verdict.contender)}: {_pairing_text(pairing)}"
        for pairing in confirmed.golden_pairings.values()]


def _markdown_change_points(report: RegressReport, histories: Mapping[tuple, History],
                            golden: Mapping[tuple, GoldenHistory] = MappingProxyType({})) -> list[str]:
    searched = {key: history for key, history in histories.items() if len(history.records) >= MIN_POINTS}
    lines = ["", f"### Change points across history ({len(searched)} of {len(report.verdicts)} keys with "
             f"{MIN_POINTS} or more runs searched; E-divisive with a t-test, p <= 0.001)", ""]
    lines += _markdown_points(report, searched, "ms", ".3f")
    if golden:
        ratios = {key: series.history for key, series in golden.items() if len(series.history.records) >= MIN_POINTS}
        runs = ", ".join(sorted({series.golden_run for series in golden.values()}))
        lines += ["", f"#### The paired ratio against golden run {runs} ({len(ratios)} of {len(golden)} keys with "
                  f"{MIN_POINTS} or more paired nights searched)", ""]
        lines += _markdown_points(report, ratios, "ratio", ".4f")
    return lines


def _markdown_points(report: RegressReport, searched: Mapping[tuple, History], unit: str, shown: str) -> list[str]:
    header = ["key", "first run of the new level", f"mean before {unit}", f"mean after {unit}", "change", "p",
              "environment changes there"]
    rows = [(verdict, point) for verdict in report.verdicts
            for point in (searched[verdict.contender.history_key].points
                          if verdict.contender.history_key in searched else [])]
    if not rows:
        return ["None found."]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(markdown_cell(cell) for cell in (
        _key(report, verdict.contender), f"{_run_text(report, point.record.run_id)} {point.record.created_at[:10]}",
        format(point.mean_before, shown), format(point.mean_after, shown), f"{point.change:+.1%}",
        f"{point.p_value:.2g}", "; ".join(point.environment) or "-")) + " |" for verdict, point in rows]
    return lines


def _point_text(point: ChangePoint) -> str:
    where = f"run {point.record.run_id} ({point.record.created_at[:10]})"
    changes = f"; environment: {'; '.join(point.environment)}" if point.environment else ""
    return (f"{where}: mean {point.mean_before:.4g} -> {point.mean_after:.4g} ({point.change:+.1%}), "
            f"p = {point.p_value:.2g}{changes}")


def _histories_json(histories: Mapping[tuple, History], golden: Mapping[tuple, GoldenHistory]) -> list[dict]:
    return [{"key": dict(zip(HISTORY_FIELDS, key)), **history.to_json_dict(),
             "golden_ratio": golden[key].to_json_dict() if key in golden else None}
            for key, history in histories.items()]


def _cells(report: RegressReport, verdict: Verdict) -> list[str]:
    test = verdict.significance
    outcome = f"**{verdict.outcome}**" if verdict.outcome != "unchanged" else verdict.outcome
    return [
        outcome,
        _key(report, verdict.contender),
        f"{test.baseline_value:.3f}" if test else "-",
        f"{test.contender_value:.3f}" if test else "-",
        f"{test.change:+.1%}" if test else "-",
        f"{test.p_value:.2g}" if test else "-",
        f"±{test.detectable:.1%}" if test else "-",
        _run_text(report, verdict.baseline.run_id) if verdict.baseline else "-",
        "; ".join(verdict.environment) or "-",
    ]


def _key(report: RegressReport, record: Record) -> str:
    """The key in words, naming the input shape and the board where the judged records hold more
    than one (and keeping JUnit testcase names unique)."""
    judged = [verdict.contender for verdict in report.verdicts]
    shapes = len({judged_record.input_shape for judged_record in judged}) > 1
    several = len(boards(judged)) > 1
    return (key_text(record) + (f" at {record.input_shape or '-'}" if shapes else "")
            + (f" on {record.board or '-'}" if several else ""))


def _run_text(report: RegressReport, run_id: str) -> str:
    commit = report.runs[run_id].git_commit if run_id in report.runs else None
    return f"{run_id} ({commit[:10]})" if commit else run_id


def print_report(console: Console, report: RegressReport, histories: Mapping[tuple, History],
                  confirmed: Optional[ConfirmReport] = None, aa: Optional[AAReport] = None,
                  golden: Mapping[tuple, GoldenHistory] = MappingProxyType({})) -> None:
    table = Table(title=f"{report.metric}: contender run {report.contender_run.id} against its baselines",
                  box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    for name, justify in (("verdict", "left"), ("key", "left"), ("base ms", "right"), ("cont ms", "right"),
                          ("change", "right"), ("p", "right"), ("detectable", "right"), ("env", "right")):
        table.add_column(name, justify=justify, no_wrap=name != "key", overflow="fold")
    for verdict in report.verdicts:
        cells = _cells(report, verdict)
        table.add_row(Text(verdict.outcome, style=OUTCOME_STYLES[verdict.outcome]), Text(cells[1]), *cells[2:7],
                      str(len(verdict.environment)) if verdict.environment else "")
    console.print(table)
    for verdict in report.verdicts:
        if verdict.outcome != "unchanged" or abs(verdict.significance.change) > verdict.rule.threshold:
            console.print(Text(f"{_key(report, verdict.contender)}: {verdict.outcome}: {verdict.reason}",
                               style=OUTCOME_STYLES[verdict.outcome]))
    _print_environment_changes(console, report)
    for verdict in report.verdicts:
        history = histories.get(verdict.contender.history_key)
        for point in history.points if history else []:
            console.print(Text(f"{_key(report, verdict.contender)}: change point at {_point_text(point)}",
                               style="magenta"))
        series = golden.get(verdict.contender.history_key)
        for point in series.history.points if series else []:
            console.print(Text(f"{_key(report, verdict.contender)}: change point of the ratio to golden run "
                               f"{series.golden_run} at {_point_text(point)}", style="magenta"))
    if confirmed is not None:
        _print_confirmations(console, report, confirmed)
        if confirmed.golden_pairings:
            console.print(f"{_pairings_title(confirmed)}:", highlight=False)
        for pairing in confirmed.golden_pairings.values():
            console.print(Text(f"{_key(report, pairing.verdict.contender)}: {_pairing_text(pairing)}"))
    if aa is not None:
        _print_aa(console, report, confirmed, aa)
    console.print(summary_line(report), highlight=False)


def _print_confirmations(console: Console, report: RegressReport, confirmed: ConfirmReport) -> None:
    if not confirmed.confirmations:
        console.print(f"{_confirm_title(confirmed)}: no key was suspected.", highlight=False)
        return
    table = Table(title=_confirm_title(confirmed), box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    for name in CONFIRM_HEADER:
        table.add_column(name, overflow="fold")
    for confirmation in confirmed.confirmations.values():
        cells = _confirm_cells(report, confirmation)
        table.add_row(cells[0], cells[1], Text(cells[2], style=OUTCOME_STYLES[confirmation.outcome]), *cells[3:])
    console.print(table)
    for confirmation in confirmed.confirmations.values():
        console.print(Text(f"{_key(report, confirmation.verdict.contender)}: paired {confirmation.outcome}: "
                           f"{confirmation.reason}", style=OUTCOME_STYLES[confirmation.outcome]))


def _print_aa(console: Console, report: RegressReport, confirmed: ConfirmReport, aa: AAReport) -> None:
    if confirmed.aa:
        table = Table(title=_aa_title(aa, confirmed), box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
        for name in AA_HEADER:
            table.add_column(name, overflow="fold")
        for check in confirmed.aa.values():
            cells = _aa_cells(report, check)
            table.add_row(cells[0], Text(cells[1], style=OUTCOME_STYLES[check.outcome]), *cells[2:])
        console.print(table)
    else:
        console.print(f"{_aa_title(aa, confirmed)}: no key kept an ONNX file to measure against itself.",
                      highlight=False)
    for line in _aa_lines(report, confirmed, aa):
        console.print(Text(line))


def _print_environment_changes(console: Console, report: RegressReport) -> None:
    """Each distinct set of changes once, with the keys it applies to (often all of them)."""
    keys_by_changes: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for verdict in report.verdicts:
        if verdict.environment:
            keys_by_changes[verdict.environment].append(_key(report, verdict.contender))
    for changes, keys in keys_by_changes.items():
        scope = f"all {len(keys)} keys" if len(keys) == len(report.verdicts) else ", ".join(keys)
        console.print(Text(f"environment changes ({scope}): " + "; ".join(changes)))



"""``edgebench regress``: judge a run against earlier runs; exit 1 on a regression, for CI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgebench.cli import render
from edgebench.cli.app import app
from edgebench.cli.compare import SELECTOR_HELP
from edgebench.cli.render import boards, markdown_cell
from edgebench.cli.options import BoardOption, MachineOption, StoreOption
from edgebench.results.change_points import MIN_POINTS, ChangePoint, History, regress_histories
from edgebench.results.compare import METRICS, key_text
from edgebench.results.key import HISTORY_FIELDS
from edgebench.results.regress import DEFAULT_THRESHOLD, OUTCOMES, RegressReport, Verdict, regress
from edgebench.results.record import Record
from edgebench.results.select import DEFAULT_METHOD, METHODS, Scope
from edgebench.results.store import Store

OUTCOME_STYLES = {"regression": "red", "failed": "red", "improvement": "green", "unchanged": "", "new": "cyan"}


@app.command("regress")
def regress_command(
    baseline: Optional[str] = typer.Option(
        None, "--baseline", help=f"Baseline records: {SELECTOR_HELP} Default: for each key, the most recent "
        "earlier run that measured it."),
    contender: Optional[str] = typer.Option(
        None, "--contender", help="The run to judge (id or unique prefix). Default: the latest run with records "
        "of the method judged (measured on the --machine or --board when given)."),
    method: Optional[str] = typer.Option(
        None, "--method", help=f"Records to judge: {', '.join(METHODS)} (paired: `edgebench prune`'s). Default: "
        f"the method the --baseline selector names, else {DEFAULT_METHOD}."),
    metric: str = typer.Option("p50", "--metric", help=f"One of: {', '.join(METRICS)}."),
    threshold: float = typer.Option(
        DEFAULT_THRESHOLD, "--threshold", help="Relative change that counts, as a fraction (0.05 = 5%)."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write a JUnit XML report here (one testcase per key)."),
    markdown: Optional[Path] = typer.Option(
        None, "--markdown", help="Write a Markdown summary here (e.g. the file $GITHUB_STEP_SUMMARY names)."),
    as_json: bool = typer.Option(False, "--json", help="Print the verdicts as JSON instead of a table."),
    machine: Optional[str] = MachineOption,
    board: Optional[str] = BoardOption,
    store: str = StoreOption,
) -> None:
    """Flag keys whose latency changed beyond the threshold and significantly (alpha 0.01).
    --machine and --board judge only that machine's or board's keys, against its own history.
    Keys with at least 6 runs also get the change points of their p50 across their history
    (E-divisive with a t-test, p <= 0.001), which catch a small step or a slow drift; these are
    shown, never failed on.

    Exit status: 1 when a key regressed or its measurement failed, 0 otherwise, 2 on bad input."""
    scope = Scope(machine, board)
    with Store.open(store, create=False) as opened:
        report = regress(opened, contender, baseline, metric, threshold, method=method, scope=scope)
        histories = regress_histories(opened, report)
    if junit is not None:
        _write(junit, junit_xml(report, histories))
    if markdown is not None:
        _write(markdown, markdown_summary(report, histories))
    if as_json:
        typer.echo(json.dumps({**report.to_json_dict(), "histories": _histories_json(histories)}, indent=2))
    else:
        _print_report(render.stdout_console(), report, histories)
    raise typer.Exit(1 if report.failed else 0)


def summary_line(report: RegressReport) -> str:
    counts = report.counts()
    figures = ", ".join(f"{counts[outcome]} {outcome}" for outcome in OUTCOMES)
    scope = f", {report.scope}" if report.scope else ""
    return (f"{figures} ({report.method} records, {report.metric}, threshold {report.threshold:.0%}, "
            f"alpha {report.alpha:g}; contender run {report.contender_run.id}{scope})")


def junit_xml(report: RegressReport, histories: Mapping[tuple, History] = MappingProxyType({})) -> str:
    """One testsuite, one testcase per key: failure = regression, error = failed measurement,
    skipped = no baseline; the figures, environment changes and the key's change points across its
    history in each testcase's system-out (a failure's text)."""
    counts = report.counts()
    totals = {"tests": str(len(report.verdicts)), "failures": str(counts["regression"]),
              "errors": str(counts["failed"]), "skipped": str(counts["new"]), "time": "0"}
    run = report.contender_run
    suites = ET.Element("testsuites", name="edgebench regress", **totals)
    suite = ET.SubElement(suites, "testsuite", name=f"edgebench regress {report.metric}", **totals,
                          timestamp=run.started_at[:19], hostname=run.host)
    properties = ET.SubElement(suite, "properties")
    for name, value in (("contender_run", run.id), ("git_commit", run.git_commit or ""), ("method", report.method),
                        ("metric", report.metric),
                        ("threshold", report.threshold), ("alpha", report.alpha)):
        ET.SubElement(properties, "property", name=name, value=str(value))
    for verdict in report.verdicts:
        _testcase(suite, report, verdict, histories.get(verdict.contender.history_key))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _testcase(suite: ET.Element, report: RegressReport, verdict: Verdict, history: History | None) -> None:
    record = verdict.contender
    case = ET.SubElement(suite, "testcase", classname=f"edgebench.{record.model}", name=_key(report, record),
                         time="0")
    if verdict.outcome == "regression":
        ET.SubElement(case, "failure", message=verdict.reason, type="regression").text = _details(verdict, history)
        return
    if verdict.outcome == "failed":
        ET.SubElement(case, "error", message=verdict.reason, type="measurement-failed").text = record.error or ""
    elif verdict.outcome == "new":
        ET.SubElement(case, "skipped", message=verdict.reason)
    ET.SubElement(case, "system-out").text = _details(verdict, history)


def _details(verdict: Verdict, history: History | None) -> str:
    lines = [f"{verdict.outcome}: {verdict.reason}"]
    if verdict.baseline is not None:
        lines.append(f"baseline run {verdict.baseline.run_id}, contender run {verdict.contender.run_id}")
    lines += [f"environment: {change}" for change in verdict.environment]
    lines += [f"change point: {_point_text(point)}" for point in (history.points if history else [])]
    return "\n".join(lines)


def markdown_summary(report: RegressReport, histories: Mapping[tuple, History] = MappingProxyType({})) -> str:
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
    lines += _markdown_change_points(report, histories)
    return "\n".join(lines) + "\n"


def _markdown_change_points(report: RegressReport, histories: Mapping[tuple, History]) -> list[str]:
    searched = {key: history for key, history in histories.items() if len(history.records) >= MIN_POINTS}
    header = ["key", "first run of the new level", "mean before ms", "mean after ms", "change", "p",
              "environment changes there"]
    lines = ["", f"### Change points across history ({len(searched)} of {len(report.verdicts)} keys with "
             f"{MIN_POINTS} or more runs searched; E-divisive with a t-test, p <= 0.001)", ""]
    rows = [(verdict, point) for verdict in report.verdicts
            for point in (searched[verdict.contender.history_key].points if verdict.contender.history_key in searched else [])]
    if not rows:
        return lines + ["None found."]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(markdown_cell(cell) for cell in (
        _key(report, verdict.contender), f"{_run_text(report, point.record.run_id)} {point.record.created_at[:10]}",
        f"{point.mean_before:.3f}", f"{point.mean_after:.3f}", f"{point.change:+.1%}", f"{point.p_value:.2g}",
        "; ".join(point.environment) or "-")) + " |" for verdict, point in rows]
    return lines


def _point_text(point: ChangePoint) -> str:
    where = f"run {point.record.run_id} ({point.record.created_at[:10]})"
    changes = f"; environment: {'; '.join(point.environment)}" if point.environment else ""
    return (f"{where}: mean {point.mean_before:.4g} -> {point.mean_after:.4g} ({point.change:+.1%}), "
            f"p = {point.p_value:.2g}{changes}")


def _histories_json(histories: Mapping[tuple, History]) -> list[dict]:
    return [{"key": dict(zip(HISTORY_FIELDS, key)), **history.to_json_dict()} for key, history in histories.items()]


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


def _print_report(console: Console, report: RegressReport, histories: Mapping[tuple, History]) -> None:
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
        if verdict.outcome != "unchanged" or abs(verdict.significance.change) > report.threshold:
            console.print(Text(f"{_key(report, verdict.contender)}: {verdict.outcome}: {verdict.reason}",
                               style=OUTCOME_STYLES[verdict.outcome]))
    _print_environment_changes(console, report)
    for verdict in report.verdicts:
        history = histories.get(verdict.contender.history_key)
        for point in history.points if history else []:
            console.print(Text(f"{_key(report, verdict.contender)}: change point at {_point_text(point)}",
                               style="magenta"))
    console.print(summary_line(report), highlight=False)


def _print_environment_changes(console: Console, report: RegressReport) -> None:
    """Each distinct set of changes once, with the keys it applies to (often all of them)."""
    keys_by_changes: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for verdict in report.verdicts:
        if verdict.environment:
            keys_by_changes[verdict.environment].append(_key(report, verdict.contender))
    for changes, keys in keys_by_changes.items():
        scope = f"all {len(keys)} keys" if len(keys) == len(report.verdicts) else ", ".join(keys)
        console.print(Text(f"environment changes ({scope}): " + "; ".join(changes)))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")

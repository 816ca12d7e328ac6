"""``edgebench regress``: judge a run against earlier runs; exit 1 on a regression, for CI. What it
prints and writes (table, JSON, Markdown, JUnit) is ``cli/regress_output.py``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from edgebench.cli import render
from edgebench.cli.app import app
from edgebench.cli.compare import SELECTOR_HELP
from edgebench.cli.options import BoardOption, MachineOption, StoreOption
from edgebench.cli.regress_output import AAReport, junit_xml, markdown_summary, print_report, report_json
from edgebench.errors import UsageError
from edgebench.interrupts import exit_status
from edgebench.results.calibration import SUITE_TAG, aa_keys, calibration, check_share, eligible_keys, night_number
from edgebench.results.change_points import regress_histories
from edgebench.results.compare import METRICS
from edgebench.results.confirm import DEFAULT_SESSIONS, TAGS, ConfirmReport, confirm, golden_records
from edgebench.results.golden_series import golden_histories
from edgebench.results.regress import DEFAULT_THRESHOLD, RegressReport, RegressRule, Verdict, regress
from edgebench.results.record import Record
from edgebench.results.select import DEFAULT_METHOD, METHODS, Scope, judged_method, stored_runs
from edgebench.results.store import RunInfo, Store
from edgebench.session import interrupted_line, run_session
from edgebench.sweep.paired import CONFIRM_BLOCK_S, CONFIRM_ROUNDS, Pairing
from edgebench.sweep.suite import Suite, load_suite

# The options a suite's [regress] table sets: given with --suite, they are refused.
SUITE_SETS = ("metric", "threshold", "confirm_keys", "confirm_sessions", "confirm_rounds", "block_time", "golden",
              "golden_all", "aa_share")


@dataclass(frozen=True)
class Judging:
    """How regress judges and confirms: from the options, or from a suite's [regress] table."""

    metric: str
    threshold: float
    rules: Mapping[str, RegressRule]  # per model spec
    confirm: bool
    sessions: int
    rounds: int
    block_time: float
    golden: Optional[str]
    golden_all: bool  # every key paired with the golden run, night after night
    aa_share: float
    suite: Optional[str]  # the suite's name


@app.command("regress")
def regress_command(
    ctx: typer.Context,
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
    confirm_keys: bool = typer.Option(
        False, "--confirm", help="Measure each suspected key again (a regression, or a change beyond the threshold "
        "that was not significant): tonight's model file against the baseline's, from the artifact store, "
        "alternating in one worker on the key's target; more sessions while undecided. The exit status then "
        "follows the paired verdicts: a regression they call same does not fail."),
    confirm_sessions: int = typer.Option(
        DEFAULT_SESSIONS, "--confirm-sessions", min=1, help="--confirm: paired sessions (fresh worker processes) "
        "per key at most."),
    confirm_rounds: int = typer.Option(CONFIRM_ROUNDS, "--confirm-rounds", min=2,
                                       help="--confirm: paired rounds per session."),
    block_time: float = typer.Option(CONFIRM_BLOCK_S, "--block-time", min=0.005,
                                     help="--confirm: seconds of each timed block."),
    golden: Optional[str] = typer.Option(
        None, "--golden", metavar="RUN", help="--confirm: also measure each suspected key against this pinned run's "
        "record of it (reported beside; the verdict stays on the baseline)."),
    golden_all: bool = typer.Option(
        False, "--golden-all", help="--confirm --golden RUN: also measure every key not confirmed tonight paired "
        "against the golden run's record of it, one session, and keep the ratio: night after night, each key's "
        "series of paired ratios against golden, whose change points are shown beside the p50's. Never fails "
        "the build."),
    aa_share: float = typer.Option(
        0.0, "--aa-share", help="--confirm: A/A calibration: this share of the keys (0 to 1; at least one key when "
        "above 0), in turn night after night, measured paired against itself; the false-positive rate achieved "
        "tonight and over the store's history is reported. Never fails the build."),
    suite: Optional[Path] = typer.Option(
        None, "--suite", help="A suite file (TOML): judge its latest run (runs of `edgebench run --suite` are "
        "tagged suite=NAME) with its regress table's metric, thresholds per model, confirmation, golden run "
        "and A/A share; those options are then refused."),
    reference_python: Optional[str] = typer.Option(
        None, "--reference-python", metavar="PATH", help="--confirm: where a key's baseline was measured with "
        "another runtime (onnxruntime, torch or tensorrt version) than tonight's, measure the baseline's side "
        "with this Python (it has that runtime and can import edgebench): one long-lived worker per side, "
        "taking turns block by block, on this machine. Without it both sides run on tonight's runtime and "
        "the verdict's reason says the runtime could not be restored."),
    machine: Optional[str] = MachineOption,
    board: Optional[str] = BoardOption,
    store: str = StoreOption,
) -> None:
    """Flag keys whose latency changed beyond the threshold and significantly (alpha 0.01).
    --machine and --board judge only that machine's or board's keys, against its own history.
    Keys with at least 6 runs also get the change points of their p50 across their history
    (E-divisive with a t-test, p <= 0.001), which catch a small step or a slow drift; and of their
    nightly paired ratio against the golden run, where --golden-all stored one; these are shown,
    never failed on.

    --confirm measures suspected keys again, paired (docs/compare-and-regress.md); its records go to
    the store under a run tagged command=regress-confirm. --aa-share adds A/A checks; --golden-all
    pairs every key with the golden run.

    --suite FILE judges the suite's latest run as the regress table of the suite file says.

    Exit status: 1 when a key regressed or its measurement failed, 0 otherwise, 2 on bad input. With
    --confirm, a key fails when the paired measurement confirms the regression, or when the history
    called it a regression and the paired one could not decide; A/A checks never fail."""
    judging = (_suite_judging(ctx, load_suite(suite)) if suite is not None else
               Judging(metric, threshold, {}, confirm_keys, confirm_sessions, confirm_rounds, block_time, golden,
                       golden_all, _share(aa_share), None))
    paired_options = [name for name, given in (("--golden", golden is not None), ("--golden-all", golden_all),
                                               ("--aa-share", aa_share > 0)) if given]
    if not judging.confirm and paired_options:
        raise UsageError(f"{paired_options[0]} measures keys paired, for --confirm; add --confirm")
    if judging.golden_all and judging.golden is None:
        raise UsageError("--golden-all pairs every key with the golden run; add --golden RUN")
    if reference_python is not None:
        reference_python = _interpreter(reference_python, judging.confirm)
    scope = Scope(machine, board)
    with Store.open(store, create=False) as opened:
        runs = stored_runs(opened)
        if judging.suite is not None:
            contender = _suite_run(opened, runs, judging.suite, contender, judged_method(method), scope)
        report = regress(opened, contender, baseline, judging.metric, judging.threshold, method=method, scope=scope,
                         rules=judging.rules)
        histories = regress_histories(opened, report)
        golden_run = opened.get_run(judging.golden).id if judging.golden is not None else None
        pinned = golden_records(opened, golden_run, report.method) if golden_run is not None else None
        night = night_number(runs, report.contender_run, report.method, judging.suite)
        checked = aa_keys(report, judging.aa_share, night) if judging.confirm else []
    confirmed, aa = None, None
    if judging.confirm:
        confirmed = _confirmed(report, store, judging.sessions, Pairing(judging.rounds, judging.block_time), pinned, checked,
                               reference_python, judging.golden_all)
    with Store.open(store, create=False) as opened:  # after the confirmation: tonight's records included
        runs = opened.runs()
        golden_series = golden_histories(opened, runs, histories, golden_run)
        if confirmed is not None and judging.aa_share > 0:
            calibrated = calibration(opened, runs, confirmed.run_id, judging.suite, scope, by_confirm_run=True)
            aa = AAReport(judging.aa_share, night, len(eligible_keys(report)), calibrated)
    if junit is not None:
        _write(junit, junit_xml(report, histories, confirmed, aa, golden_series))
    if markdown is not None:
        _write(markdown, markdown_summary(report, histories, confirmed, aa, golden_series))
    if as_json:
        typer.echo(json.dumps(report_json(report, histories, confirmed, aa, golden_series), indent=2))
    else:
        print_report(render.stdout_console(), report, histories, confirmed, aa, golden_series)
    failed = confirmed.failed(report) if confirmed is not None else report.failed
    raise typer.Exit(1 if failed else 0)


def _share(share: float) -> float:
    try:
        return check_share(share)
    except ValueError as exc:
        raise UsageError(f"--aa-share: {exc}") from None


def _suite_judging(ctx: typer.Context, loaded: Suite) -> Judging:
    """The suite's [regress] table, refusing the options it sets when given too."""
    given = [param.opts[0] for param in ctx.command.params
             if param.name in SUITE_SETS and _from_command_line(ctx, param.name)]
    if given:
        raise UsageError(f"--suite sets the metric, thresholds and confirmation (its [regress] table); "
                         f"leave out {', '.join(given)}")
    settings = loaded.regress
    return Judging(settings.metric, settings.threshold, loaded.regress_rules(), settings.confirm,
                   settings.confirm_sessions, settings.confirm_rounds, settings.confirm_block_time, settings.golden,
                   settings.golden_every_night, settings.aa_share, loaded.name)


def _from_command_line(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)  # an enum of typer's own copy of click: told apart by name
    return source is not None and source.name == "COMMANDLINE"


def _suite_run(store: Store, runs: Sequence[RunInfo], name: str, contender: Optional[str], method: str,
               scope: Scope) -> str:
    """The run to judge: ``contender`` when it is a run of the suite, else the suite's latest run
    holding ``method`` records in ``scope``."""
    if contender is not None:
        run = store.get_run(contender)
        if run.tags.get(SUITE_TAG) != name:
            raise UsageError(f"run {run.id} is not a run of suite {name} (its tags: {run.tags_text})")
        return run.id
    for run in runs:
        if (run.tags.get(SUITE_TAG) == name and method in run.methods and scope.may_hold(run)
                and (not scope or any(scope.admits(record) for record in store.records(run.id, method=method)))):
            return run.id
    where = f" of {scope}" if scope else ""
    raise UsageError(f"no run of suite {name} holds {method} records{where} (`edgebench run --suite FILE` tags its "
                     f"runs suite={name})")


def _interpreter(path: str, confirm_keys: bool) -> str:
    """--reference-python as an executable's path; UsageError for one that is not."""
    if not confirm_keys:
        raise UsageError("--reference-python measures the baseline's side of --confirm; add --confirm")
    found = shutil.which(path)
    if found is None:
        raise UsageError(f"--reference-python {path}: no such executable")
    return str(Path(found).absolute())  # not resolved: a virtualenv's python is a symlink that must stay one


def _confirmed(report: RegressReport, store: str, sessions: int, pairing: Pairing,
               pinned: Optional[Mapping[tuple, Record]], aa: Sequence[Verdict],
               reference_python: Optional[str] = None, golden_all: bool = False) -> ConfirmReport:
    """The paired confirmation in a run of its own; Ctrl-C keeps what was measured, says so, exits."""
    err = Console(stderr=True)

    def log(message: str) -> None:
        err.print(message, highlight=False)

    session = None
    try:
        with run_session(store, tags=TAGS, log=log) as session:
            return confirm(report, session, sessions=sessions, pairing=pairing, golden=pinned, aa=aa,
                           reference_python=reference_python, golden_all=golden_all)
    except KeyboardInterrupt as interrupt:
        log(interrupted_line(session))
        raise typer.Exit(exit_status(interrupt))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")

"""Regression detection: a run's records against earlier records of the same keys.

The contender is one run (by default the latest run holding records of the judged method,
sweep unless told), or the part of it measured on one machine or board (a ``Scope``: then its
baselines and history come from that machine or board too). Each of its records of that method is judged against a baseline record of
the same key (``results.key.HISTORY_FIELDS``: the model by its name, not its fingerprint, so a
nightly file that now holds another model is judged, not called new; machine and method
included, so two hosts sharing a target name keep two histories, and a prune run's paired
records never judge or get judged by sweep records): by default the record from the most
recent earlier run that measured that key, or the latest record a baseline selector picks
(``run=ID``, ``tag:nightly=2026-11-20``).

The rule
--------
Let r = metric(contender) / metric(baseline) - 1 for the metric (p50, p90, p99 or mean, as
in the records' ``latency_ms``). A key **regressed** when r > threshold (default 5%) and the
change is significant at alpha = 0.01, one-sided in the direction of the change; it
**improved** when r < -threshold and the change is significant. Otherwise it is unchanged,
and the verdict says which condition failed and the smallest change this pair could have
called significant ("detectable"). The metric and threshold may differ per model spec
(``rules``: a suite's per-model overrides); each verdict names the rule that judged it.

Significance is a t-test of d = log(contender metric / baseline metric). What matters is the
variance of d, and on a shared machine the samples are the smallest part of it. Two runs of
the same setup differ because each worker process lands in its own machine state (where its
threads run, what the other tenants do during its seconds), and because a whole run can sit in
a slow or fast period that outlasts its processes. So the variance of d is the larger of two
estimates, each with its degrees of freedom:

- across runs: 2 s_H^2, where s_H^2 is the variance of log metric over the key's last (up to
  10) records from runs before the contender (df = their number - 1). It is the run-to-run
  variation itself, process and run effects included, and is used only with at least 3 such
  runs. A real change inside that window inflates it until it leaves: the test is then
  conservative, never overconfident;
- within the two runs: s_P^2 (1/n_b + 1/n_c) plus the sample variance of both metrics.
  s_P^2 is the variance of log per-process p50 (``stability.process_p50s``) within each
  record, pooled over both (df = processes - 1 per record); process effects are taken as
  multiplicative on the whole distribution, so the term serves p90, p99 and mean too. The
  sample variance is the m-out-of-n bootstrap of each record's raw samples
  (``compare.log_metric_deviations``), what a tail metric such as p99 adds on top. The
  degrees of freedom are Welch-Satterthwaite's.

Why not a rank test on raw samples: Mann-Whitney U treats each of thousands of samples as
independent, so two separate runs of the same setup, whose processes differ by a few
percent, come out "significant" nearly every time; the threshold alone then decides, and A/A
pairs beyond it are false alarms. A bootstrap of the raw samples has the same blind spot.
Processes as the unit are not enough either: on the development machine one run's three
processes agreed within 6% (p50 2.08 to 2.19 ms) while the whole run sat 39% and 52% above two
earlier runs of the same setup, and the within-run estimate alone flagged 4 of 45 A/A pairs
(``benchmarks/regress_quality.py``, a short development run). The history term is what keeps the
false-alarm rate near alpha; without 3 earlier runs of a key the verdict says that run-to-run
variation was not measured. The price is power: a key can only show changes beyond what its
own history varies by, and the verdict reports that figure.

Beside each verdict is what differs between the two records: the model itself when its
fingerprint changed (``model changed (fingerprint a1b2c3d4e5f6 -> ...)``), then the environment
(library versions, backend, backend options, settings, host, CPU, throttling), so a person can
see why.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from edgebench.errors import UsageError
from edgebench.results.compare import METRICS, SEED, latest_per_key, log_metric_deviations
from edgebench.results.intervals import process_count
from edgebench.results.key import HISTORY_FIELDS, KEY_FIELDS
from edgebench.results.record import Record
from edgebench.results.select import (
    Scope,
    Selector,
    judged_method,
    parse_selector,
    runs_matching,
    runs_measuring,
    scoped_run_records,
    select,
    stored_runs,
)
from edgebench.results.store import RunInfo, Store

DEFAULT_THRESHOLD = 0.05
ALPHA = 0.01
HISTORY_RUNS = 10  # earlier records of a key that estimate its run-to-run variation
MIN_HISTORY = 3
HISTORY_SCAN_LIMIT = 100  # earlier runs searched for a key's baseline and history
_MACHINE = HISTORY_FIELDS.index("machine_id")
FINGERPRINT_SHOWN = 12  # hex digits of a model fingerprint in a change

Outcome = Literal["regression", "improvement", "unchanged", "new", "failed"]
Noise = Literal["history", "processes", "samples"]
# Outcomes that fail a CI job: a slower key, or a key that could not be measured at all.
FAILING: tuple[Outcome, ...] = ("regression", "failed")
OUTCOMES: tuple[Outcome, ...] = ("regression", "failed", "improvement", "unchanged", "new")


@dataclass(frozen=True)
class RegressRule:
    """What judges a key: the metric and the threshold (a fraction: 0.05 = 5%)."""

    metric: str
    threshold: float


@dataclass(frozen=True)
class Significance:
    """The test of one baseline/contender pair on one metric."""

    baseline_value: float
    contender_value: float
    change: float  # contender / baseline - 1
    p_value: float  # one-sided, in the direction of the change
    standard_error: float  # of log(contender / baseline)
    df: float
    detectable: float  # the smallest |change| this pair could call significant at alpha
    noise: Noise  # which estimate set the variance: earlier runs, these runs' processes, samples only
    history_runs: int  # earlier records of the key that were available (at most HISTORY_RUNS)


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    contender: Record
    baseline: Record | None
    reason: str
    significance: Significance | None
    environment: tuple[str, ...]  # what differs from the baseline: the model (a new fingerprint), then the environment
    rule: RegressRule  # the metric and threshold that judged this key

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "metric": self.rule.metric,
            "threshold": self.rule.threshold,
            "key": {name: getattr(self.contender, name) for name in KEY_FIELDS},
            "model_spec": self.contender.model_spec,
            "board": self.contender.board,
            "reason": self.reason,
            "contender_run": self.contender.run_id,
            "baseline_run": self.baseline.run_id if self.baseline else None,
            **(_significance_json(self.significance) if self.significance else {}),
            "environment_changes": list(self.environment),
        }


@dataclass(frozen=True)
class RegressReport:
    contender_run: RunInfo
    method: str  # of the records judged
    runs: Mapping[str, RunInfo]  # every run in the store, by id, for commits and hosts
    metric: str
    threshold: float
    alpha: float
    verdicts: list[Verdict]
    scope: Scope = Scope()  # the machine or board the keys judged were restricted to
    rules: Mapping[str, RegressRule] = field(default_factory=dict)  # per model spec, where not metric and threshold

    def counts(self) -> Counter[str]:
        return Counter(verdict.outcome for verdict in self.verdicts)

    @property
    def failed(self) -> bool:
        return any(verdict.outcome in FAILING for verdict in self.verdicts)

    def to_json_dict(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            "contender_run": self.contender_run.id,
            "git_commit": self.contender_run.git_commit,
            "method": self.method,
            "metric": self.metric,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "rules": {model: vars(rule) for model, rule in self.rules.items()},
            "machine": self.scope.machine,
            "board": self.scope.board,
            "counts": {outcome: counts[outcome] for outcome in OUTCOMES},
            "failed": self.failed,
            "verdicts": [verdict.to_json_dict() for verdict in self.verdicts],
        }


def regress(
    store: Store,
    contender_run: str | None = None,
    baseline: str | None = None,
    metric: str = "p50",
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = ALPHA,
    method: str | None = None,
    scope: Scope = Scope(),
    rules: Mapping[str, RegressRule] = MappingProxyType({}),
) -> RegressReport:
    """Judge every key of the contender run (default: the latest with records of ``method`` in
    ``scope``) against its baseline. ``method``: sweep unless the baseline selector names another.
    ``scope`` (a machine, a board) holds the keys judged and their baselines and history.
    ``rules``: another metric or threshold for the keys of a model spec (a suite's per-model
    ``[regress]`` overrides)."""
    for rule in (RegressRule(metric, threshold), *rules.values()):
        _check_arguments(rule.metric, rule.threshold, alpha)
    selector = parse_selector(baseline) if baseline is not None else None
    method = judged_method(method, selector)
    runs = stored_runs(store)
    contender, judged = scoped_run_records(store, runs, contender_run or None, method, scope, "judge")
    records = latest_per_key(judged, HISTORY_FIELDS)
    history = earlier_records(store, runs, contender, set(records), method, scope)
    if selector is None:
        baselines = {key: earlier[0] for key, earlier in history.items()}
    else:
        baselines = selected_baselines(store, runs, contender, selector, method, scope)
    default = RegressRule(metric, threshold)
    verdicts = []
    for key, record in records.items():
        rule = rules.get(record.model_spec, default)
        verdicts.append(judge(baselines.get(key), record, rule.metric, rule.threshold, alpha, history.get(key, [])))
    return RegressReport(contender, method, {run.id: run for run in runs}, metric, threshold, alpha, verdicts,
                         scope, dict(rules))


def earlier_records(
    store: Store, runs: Sequence[RunInfo], contender: RunInfo, keys: set[tuple], method: str, scope: Scope = Scope(),
    limit: int = HISTORY_RUNS,
) -> dict[tuple, list[Record]]:
    """For each key, its ok records of ``method`` in ``scope`` from runs started before the
    contender, newest first, at most ``limit``, searched in the ``HISTORY_SCAN_LIMIT`` most
    recent earlier runs that hold records of ``method`` on the keys' machines.

    ``runs`` newest first, as ``Store.runs`` gives them."""
    found: dict[tuple, list[Record]] = {}
    machines = {key[_MACHINE] for key in keys}
    earlier = [run for run in runs_measuring(runs, machines)
               if (run.started_at, run.id) < (contender.started_at, contender.id) and method in run.methods]
    for run in earlier[:HISTORY_SCAN_LIMIT]:
        measured = latest_per_key((r for r in store.records(run.id, method=method)
                                   if r.status == "ok" and scope.admits(r)), HISTORY_FIELDS)
        for key in keys & measured.keys():
            if len(found.setdefault(key, [])) < limit:
                found[key].append(measured[key])
        if len(found) == len(keys) and all(len(records) == limit for records in found.values()):
            break
    return found


def selected_baselines(store: Store, runs: Sequence[RunInfo], contender: RunInfo, selector: Selector,
                       method: str, scope: Scope = Scope()) -> dict[tuple, Record]:
    """The latest ok record of each key among the selector's records of ``method`` in ``scope``
    outside the contender run."""
    # Load only the runs the selector can match: a store may hold years of nightly runs.
    candidates = [run for run in runs_matching(runs, selector)
                  if run.id != contender.id and method in run.methods and scope.may_hold(run)]
    records = [record for run in candidates for record in store.records(run.id, method=method)
               if scope.admits(record)]
    chosen = select(records, selector, runs)
    return latest_per_key((r for r in chosen if r.status == "ok"), HISTORY_FIELDS)


def judge(baseline: Record | None, contender: Record, metric: str, threshold: float = DEFAULT_THRESHOLD,
          alpha: float = ALPHA, history: Sequence[Record] = ()) -> Verdict:
    """The verdict on one key: the rule in this module's docstring. ``history``: the key's
    records from earlier runs, newest first (the baseline among them, as a rule)."""
    rule = RegressRule(metric, threshold)
    if contender.status != "ok":
        reason = f"the contender measurement ended {contender.status}: {contender.error}"
        return Verdict("failed", contender, baseline, reason, None, (), rule)
    if baseline is None:
        return Verdict("new", contender, None, "no baseline record of this key", None, (), rule)
    test = significance(baseline, contender, metric, alpha, history)
    outcome, reason = _decide(test, metric, threshold, alpha)
    changes = model_change(baseline, contender) + environment_differences(baseline, contender)
    return Verdict(outcome, contender, baseline, reason, test, tuple(changes), rule)


def significance(baseline: Record, contender: Record, metric: str, alpha: float = ALPHA,
                 history: Sequence[Record] = ()) -> Significance:
    """The t-test of log(metric ratio) described in the module docstring."""
    from scipy import stats as scipy_stats  # slow to import (1.5 s): kept off the CLI's start

    base_value, cont_value = (getattr(r.latency_ms, metric) for r in (baseline, contender))
    log_ratio = math.log(cont_value / base_value)
    within, within_df, within_noise = within_runs_variance(baseline, contender, metric)
    across, across_df = across_runs_variance(history, metric)
    variance, df, noise = (across, across_df, "history") if across > within else (within, within_df, within_noise)
    error = math.sqrt(variance)
    p_value = float(scipy_stats.t.sf(abs(log_ratio) / error, df)) if error > 0 else float(log_ratio == 0)
    return Significance(
        baseline_value=base_value,
        contender_value=cont_value,
        change=math.expm1(log_ratio),
        p_value=p_value,
        standard_error=error,
        df=df,
        detectable=math.expm1(float(scipy_stats.t.isf(alpha, df)) * error),
        noise=noise,
        history_runs=len(history),
    )


def within_runs_variance(baseline: Record, contender: Record, metric: str) -> tuple[float, float, Noise]:
    """Variance of log(metric ratio) from the two records alone: processes plus samples."""
    rng = np.random.default_rng(SEED)  # one generator: the two sides draw different indices
    samples = sum(float(np.var(log_metric_deviations(r.samples_ms, metric, rng))) for r in (baseline, contender))
    pooled, process_df = process_variance((baseline, contender))
    processes = pooled * sum(1.0 / process_count(r) for r in (baseline, contender))
    if processes == 0:
        return samples, math.inf, "samples"
    total = samples + processes
    # Welch-Satterthwaite: the bootstrap term is known almost exactly, the process term from process_df.
    return total, process_df * (total / processes) ** 2, "processes"


def across_runs_variance(history: Sequence[Record], metric: str) -> tuple[float, float]:
    """2 x the variance of log metric over earlier runs, and its df; (0, 0) with too few runs."""
    if len(history) < MIN_HISTORY:
        return 0.0, 0.0
    values = np.log([getattr(record.latency_ms, metric) for record in history])
    return 2.0 * float(np.var(values, ddof=1)), float(len(values) - 1)


def process_variance(records: Iterable[Record]) -> tuple[float, int]:
    """Pooled within-record variance of log per-process p50, and its degrees of freedom."""
    groups = [np.log(r.stability.process_p50s) for r in records if process_count(r) > 1]
    df = sum(len(group) - 1 for group in groups)
    if df == 0:
        return 0.0, 0
    return float(sum(((group - group.mean()) ** 2).sum() for group in groups)) / df, df


def model_change(baseline: Record, contender: Record) -> list[str]:
    """``"model changed (fingerprint a1b2 -> c3d4)"`` when the key's model has other content now."""
    if baseline.model_fingerprint == contender.model_fingerprint:
        return []
    before, after = (_short_fingerprint(r.model_fingerprint) for r in (baseline, contender))
    return [f"model changed (fingerprint {before} -> {after})"]


def _short_fingerprint(fingerprint: str | None) -> str:
    return "(none)" if fingerprint is None else fingerprint.removeprefix("sha256:")[:FINGERPRINT_SHOWN]


# Drawn afresh for every paired measurement (the block order's seed and orders): no change of environment.
_DRAWN = frozenset({"pairing.seed", "pairing.orders"})


def environment_differences(baseline: Record, contender: Record) -> list[str]:
    """``"name: baseline value -> contender value"`` for each environment detail that differs."""
    before, after = _environment(baseline), _environment(contender)
    return [
        f"{name}: {_shown(before.get(name))} -> {_shown(after.get(name))}"
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name) and name not in _DRAWN
    ]


def _environment(record: Record) -> dict[str, Any]:
    """The record's environment as flat names: packages.onnxruntime, backend.version, host, ..."""
    flat: dict[str, Any] = {}
    for name, value in record.env.items():
        if isinstance(value, dict):
            flat.update({f"{name}.{inner}": item for inner, item in value.items()})
        else:
            flat[name] = value
    flat.update({f"backend_options.{name}": value for name, value in record.backend_options.items()})
    if record.settings is not None:
        flat.update({f"settings.{name}": value for name, value in record.settings.model_dump().items()})
    flat["throttled"] = record.throttled
    return flat


def _decide(test: Significance, metric: str, threshold: float, alpha: float) -> tuple[Outcome, str]:
    figures = f"{metric} {test.baseline_value:.4g} -> {test.contender_value:.4g} ms ({test.change:+.1%})"
    if abs(test.change) <= threshold:
        return "unchanged", f"{figures}: within the {threshold:.0%} threshold"
    if test.p_value >= alpha:
        return "unchanged", (f"{figures}: not significant (p = {test.p_value:.2g}); this pair can only "
                             f"tell changes beyond {test.detectable:.1%}" + _caveat(test))
    outcome: Outcome = "regression" if test.change > 0 else "improvement"
    return outcome, f"{figures}, p = {test.p_value:.2g}" + _caveat(test)


def _caveat(test: Significance) -> str:
    if test.history_runs >= MIN_HISTORY:
        return ""
    measured = "worker processes" if test.noise == "processes" else "raw samples (one process per record)"
    return (f"; with {test.history_runs} earlier run(s) of this key (fewer than {MIN_HISTORY}) the noise comes "
            f"from the two runs' {measured} only: run-to-run variation is not counted")


def _check_arguments(metric: str, threshold: float, alpha: float) -> None:
    if metric not in METRICS:
        raise UsageError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    if threshold < 0:
        raise UsageError(f"the threshold is a fraction >= 0 (0.05 = 5%), not {threshold:g}")
    if not 0 < alpha < 1:
        raise UsageError(f"alpha must be between 0 and 1, not {alpha:g}")


def _shown(value: Any) -> str:
    return "(none)" if value is None else str(value)


def _significance_json(test: Significance) -> dict[str, Any]:
    return {
        "baseline_value_ms": test.baseline_value,
        "contender_value_ms": test.contender_value,
        "change": test.change,
        "p_value": test.p_value,
        "standard_error_log": test.standard_error,
        "df": None if math.isinf(test.df) else test.df,
        "detectable_change": test.detectable,
        "noise": test.noise,
        "history_runs": test.history_runs,
    }


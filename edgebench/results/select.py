"""Selectors: which stored records one side of a comparison takes.

    eager                     backend eager (a bare word names a backend)
    backend=onnxruntime       the same, spelled out; also target=, mode= and device=
    method=paired             how the records were measured: sweep, paired or power
    machine_id=5f1c0a9e       one machine, by its id or a prefix of it (as tables show it)
    board=xavier-01           one board, by name (``Record.board``: the labgrid place, else the host)
    run=20240501-1203         one run, by id or by a prefix that matches only it
    tag:nightly=2026-11-20    the runs carrying this tag
    tensorrt,mode=15w         conditions joined by commas: all must hold

A selector that matches nothing is a usage error that lists what the records do hold.

A ``Scope`` (``--machine``, ``--board``) narrows the records before any selector reads them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import get_args

from edgebench.errors import UsageError
from edgebench.results.key import short_machine_id
from edgebench.results.record import Method, Record
from edgebench.results.store import RunInfo, Store, pick_run

# Record fields a selector may name; the comparison key's other fields are never varied.
SELECTABLE_FIELDS = ("target", "mode", "backend", "device", "method", "machine_id", "board")
_PREFIX_FIELDS = ("machine_id",)  # matched by prefix: tables show machine ids shortened
_RUN = "run"
_TAG_PREFIX = "tag:"
_RUNS_LISTED = 5
METHODS: tuple[str, ...] = get_args(Method)
# What regress and the report's history judge unless told: a paired run (prune) measures a pair
# under other conditions than a sweep, and is no sweep's baseline or successor.
DEFAULT_METHOD = "sweep"
_FORMS = "BACKEND, FIELD=VALUE (FIELD: " + ", ".join(SELECTABLE_FIELDS) + "), run=ID or tag:KEY=VALUE"


@dataclass(frozen=True)
class Selector:
    """A parsed selector: every condition must hold for a record to be selected."""

    text: str
    fields: Mapping[str, str] = field(default_factory=dict)
    run: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Scope:
    """``--machine`` and ``--board``: the records of one machine (its id or a prefix of it) and/or
    one board (``Record.board``); a scope naming neither holds every record."""

    machine: str | None = None
    board: str | None = None

    def __post_init__(self) -> None:
        for option, value in (("--machine", self.machine), ("--board", self.board)):
            if value is not None and not value.strip():
                raise UsageError(f"{option} needs a value: a machine id prefix or a board name")

    @property
    def conditions(self) -> dict[str, str]:
        """As a selector's fields."""
        named = {"machine_id": self.machine, "board": self.board}
        return {name: value for name, value in named.items() if value is not None}

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def __str__(self) -> str:
        named = (("machine", self.machine), ("board", self.board))
        return " and ".join(f"{name} {value!r}" for name, value in named if value is not None)

    def admits(self, record: Record) -> bool:
        return _holds(record, self.conditions)

    def may_hold(self, run: RunInfo) -> bool:
        """Whether ``run`` can hold records of the scope, told from its machine ids alone (a board
        takes its records)."""
        return self.machine is None or any(machine.startswith(self.machine) for machine in run.machine_ids)


def in_scope(records: Sequence[Record], scope: Scope, where: str) -> list[Record]:
    """The records of ``scope``. Records none of which is in it are a usage error naming the
    machines and boards they hold; ``where`` says whose records they are ("run X")."""
    kept = [record for record in records if scope.admits(record)]
    if records and not kept:
        raise UsageError(f"no record of {scope} in {where}; {machines_and_boards(records)}")
    return kept


def runs_in_scope(store: Store, runs: Sequence[RunInfo], scope: Scope) -> list[RunInfo]:
    """The runs holding records of ``scope`` (reading their records only when it names a board);
    none is a usage error naming the machines and boards the store holds."""
    kept = [run for run in runs if scope.may_hold(run)]
    if scope.board is not None:
        kept = [run for run in kept if any(scope.admits(record) for record in store.records(run.id))]
    if runs and not kept:
        raise UsageError(f"no record of {scope} in the store; {machines_and_boards(store.records())}")
    return kept


def machines_and_boards(records: Iterable[Record]) -> str:
    """What ``records`` were measured on, for messages: short machine ids and board names."""
    records = list(records)
    return (f"machines: {_joined(short_machine_id(r.machine_id) for r in records if r.machine_id)}; "
            f"boards: {_joined(r.board for r in records if r.board)}")


def scoped_run_records(store: Store, runs: Sequence[RunInfo], run_id: str | None, method: str, scope: Scope,
                       purpose: str) -> tuple[RunInfo, list[Record]]:
    """The run ``run_id`` names, else the latest run holding records of ``method`` in ``scope``;
    with those records. ``purpose`` ("judge", "report") ends the message when there are none.
    ``runs``: newest first, as ``stored_runs`` gives them."""
    if run_id is None and scope:
        for run in runs:
            if method in run.methods and scope.may_hold(run):
                records = [record for record in store.records(run.id, method=method) if scope.admits(record)]
                if records:
                    return run, records
        raise UsageError(f"no {method} records of {scope} in the store; {machines_and_boards(store.records())}")
    run = store.get_run(run_id) if run_id is not None else latest_run_of(runs, method)
    records = store.records(run.id, method=method)
    if not records:
        raise UsageError(f"run {run.id} has no {records_wanted(run, method)} to {purpose}")
    return run, in_scope(records, scope, f"run {run.id}'s {method} records")


def runs_measuring(runs: Sequence[RunInfo], machine_ids: Collection[str | None]) -> list[RunInfo]:
    """The runs holding records of any of ``machine_ids``, or all runs when one is unknown (None):
    a lab's store interleaves many machines' runs, and a key's history is its own machine's."""
    if None in machine_ids:
        return list(runs)
    return [run for run in runs if not set(machine_ids).isdisjoint(run.machine_ids)]


def stored_runs(store: Store) -> list[RunInfo]:
    """The store's runs, newest first; a store without runs is a usage error."""
    runs = store.runs()
    if not runs:
        raise UsageError(f"the store {store.location} has no runs (`edgebench run` adds them)")
    return runs


def judged_method(method: str | None, selector: Selector | None = None) -> str:
    """The method a judgement takes: ``method`` when given, else the one ``selector`` names, else
    ``DEFAULT_METHOD``."""
    named = selector.fields.get("method") if selector is not None else None
    if method is not None and named is not None and method != named:
        raise UsageError(f"--method {method} and selector {selector.text!r} name two methods; give one")
    chosen = method or named or DEFAULT_METHOD
    if chosen not in METHODS:
        raise UsageError(f"unknown method {chosen!r}; use one of {', '.join(METHODS)}")
    return chosen


def latest_run_of(runs: Sequence[RunInfo], method: str) -> RunInfo:
    """The newest run holding records of ``method`` (a prune run is not the latest sweep run); the
    newest run when none does, for the caller to say what it holds. ``runs``: newest first, not
    empty, as ``stored_runs`` gives them."""
    return next((run for run in runs if method in run.methods), runs[0])


def records_wanted(run: RunInfo, method: str) -> str:
    """``"records"`` for a run without any, else what it lacks and what it holds, for messages."""
    if not run.methods:
        return "records"
    return f"{method} records (it holds {', '.join(run.methods)} records; --method chooses)"


def parse_selector(text: str) -> Selector:
    """``"tensorrt,mode=15w,tag:nightly=2026-11-20"`` -> a ``Selector``; bad text is a UsageError."""
    fields: dict[str, str] = {}
    tags: dict[str, str] = {}
    run: str | None = None
    terms = [term.strip() for term in text.split(",") if term.strip()]
    if not terms:
        raise UsageError(f"empty selector {text!r}; use {_FORMS}")
    for term in terms:
        name, value = _split_term(term, text)
        if name.startswith(_TAG_PREFIX):
            _set_once(tags, name[len(_TAG_PREFIX):], value, text)
        elif name == _RUN:
            if run not in (None, value):
                raise UsageError(f"selector {text!r} names run twice ({run}, {value})")
            run = value
        else:
            _set_once(fields, name, value, text)
    return Selector(text=text, fields=fields, run=run, tags=tags)


def select(records: Sequence[Record], selector: str | Selector, runs: Sequence[RunInfo]) -> list[Record]:
    """The records matching ``selector``; ``runs`` (the records' runs) resolve run ids and tags."""
    chosen = parse_selector(selector) if isinstance(selector, str) else selector
    run_ids = {run.id for run in runs_matching(runs, chosen)}
    matches = [record for record in records if record.run_id in run_ids and _holds(record, chosen.fields)]
    if not matches:
        raise UsageError(f"selector {chosen.text!r} matches no record; {available(records, runs)}")
    return matches


def _holds(record: Record, fields: Mapping[str, str]) -> bool:
    return all(_matches(getattr(record, name), name, value) for name, value in fields.items())


def _matches(actual: object, name: str, wanted: str) -> bool:
    if name in _PREFIX_FIELDS:
        return actual is not None and str(actual).startswith(wanted)
    return actual == wanted


def runs_matching(runs: Sequence[RunInfo], selector: Selector) -> list[RunInfo]:
    """The runs the selector's run id and tags allow (all of them when it names neither)."""
    allowed = [find_run(runs, selector.run)] if selector.run is not None else runs
    return [run for run in allowed if all(run.tags.get(key) == value for key, value in selector.tags.items())]


def find_run(runs: Sequence[RunInfo], id_or_prefix: str) -> RunInfo:
    """The run with this id, or the only one whose id starts with it (as ``Store.get_run``)."""
    return pick_run(runs, id_or_prefix, lambda: f"; {newest_runs(runs)}")


def available(records: Sequence[Record], runs: Sequence[RunInfo]) -> str:
    """What the records hold, for error messages: field values, newest runs, tags."""
    parts = [f"{name}s: {_joined(getattr(r, name) for r in records)}" for name in SELECTABLE_FIELDS]
    parts.append(newest_runs(runs))
    tags = _joined(f"{key}={value}" for run in runs for key, value in run.tags.items())
    parts.append(f"tags: {tags}")
    return "; ".join(parts)


def newest_runs(runs: Sequence[RunInfo]) -> str:
    if not runs:
        return "the store has no runs"
    newest = sorted(runs, key=lambda run: (run.started_at, run.id), reverse=True)
    more = len(newest) - _RUNS_LISTED
    shown = ", ".join(run.id for run in newest[:_RUNS_LISTED]) + (f" (+{more} older)" if more > 0 else "")
    return f"newest runs: {shown}"


def _split_term(term: str, text: str) -> tuple[str, str]:
    name, sep, value = term.partition("=")
    name, value = name.strip(), value.strip()
    if not sep and not name.startswith(_TAG_PREFIX):
        return "backend", term  # a bare word names a backend
    is_tag = name.startswith(_TAG_PREFIX) and len(name) > len(_TAG_PREFIX)
    if not (name in SELECTABLE_FIELDS or name == _RUN or is_tag) or not value:
        raise UsageError(f"selector {text!r}: cannot read {term!r}; use {_FORMS}")
    return name, value


def _set_once(conditions: dict[str, str], name: str, value: str, text: str) -> None:
    # Two values for one field could never both hold: say so rather than match nothing.
    if name in conditions and conditions[name] != value:
        raise UsageError(f"selector {text!r} names {name} twice ({conditions[name]}, {value})")
    conditions[name] = value


def _joined(values: Iterable[object]) -> str:
    return ", ".join(sorted({str(value) for value in values})) or "none"

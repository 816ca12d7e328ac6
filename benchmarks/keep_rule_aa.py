"""The pruner's keep rule on A/A iterations: how often does it keep a candidate that is not faster?

Usage: python benchmarks/keep_rule_aa.py [--out bench/keep_rule_aa] [--model SPEC] [--task digits]
       [--copies 12] [--iterations 300] [--max-minutes M] [--backends eager] [--rounds 10]
       [--block-time 0.1] [--confirm-rounds 200] [--confirm-block-time 0.01] [--threads N] [--store FILE]
       python benchmarks/keep_rule_aa.py --out DIR --from-json FILE   (the tables again, judged by the current rule)

Every candidate of an iteration is an identical copy of the current model (the premise is checked:
equal state dicts, equal outputs on the task's input), so no candidate is faster and every kept
one is a false keep. Each iteration runs the loop's own measurements through real paired worker
runs, as ``edgebench.prune.loop`` does, with the same model lists:

1. the screen: the current model, the baseline (a copy too: the first iteration's) and
   ``--copies`` candidates in one paired run per backend, ``--rounds`` rounds;
2. the retry, when no copy passed the screen but some measured faster: those again, with
   ``RETRY_ROUNDS_FACTOR`` times the rounds, in a new paired run;
3. the confirmation, when a copy passed (the one with the largest measured gain, as the loop
   chooses among equally accurate survivors): it, the current model and the baseline in a fresh
   paired run at the confirmation's pairing (``--confirm-rounds`` of ``--confirm-block-time``,
   the loop's defaults);
4. every copy, the current model and the baseline in one more fresh paired run at the
   confirmation's pairing: not a step of the loop, the data of the factorised estimate below.

The old rule (screen and retry) keeps a copy when step 1 or 2 passes one; the corrected rule
(``edgebench.prune.keep_rule``, the loop's default) only when step 3 confirms it too. Both verdicts
come from the same measured iterations: these are the live iteration rates.

Each live iteration costs tens of seconds and yields one verdict, so the script also uses the same
data more fully in a factorised estimate of the corrected rule's rate: P(the screen or the retry
picks a copy), measured live per iteration, times P(an A/A copy passes the confirmation's test),
measured per test on every copy of the runs at the confirmation's pairing (steps 3 and 4: about a
dozen tests per iteration). It assumes, as the loop's design intends, that the confirmation (a fresh worker
process) judges the chosen copy independently of the screen that chose it.

Writes ``OUT/keep_rule_aa.md`` (the tables, with Clopper-Pearson 95% intervals) and
``OUT/keep_rule_aa.json`` (every ratio, and the factorised estimate); the records go to
``--store`` (default ``OUT/results.db``). ``--max-minutes`` ends the run after the iteration that
crosses it; Ctrl-C ends it too: either way the tables cover the iterations completed.

With a short quiet window, ``--block-time 0.02 --max-minutes 15`` measures the rule as
``edgebench prune --block-time 0.02`` runs it, with blocks a fifth as long (warm-ups and worker
start-up stay); the default measures the loop's default pairing (0.1 s blocks). The script prints
its expected iterations per 15 minutes at the start and the measured pace after every iteration.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from scipy import stats as scipy_stats

from edgebench.board.torch_models import build_module
from edgebench.errors import UsageError
from edgebench.prune import keep_rule
from edgebench.prune.baseline import prunable_model, saved_model
from edgebench.prune.loop import RETRY_ROUNDS_FACTOR
from edgebench.prune.tasks import load_task
from edgebench.results.record import Settings
from edgebench.session import available_definition, run_session
from edgebench.sweep.paired import CONFIRM_BLOCK_S, CONFIRM_ROUNDS, Pairing, Ratio, measure_paired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/keep_rule_aa"))
    parser.add_argument("--model", default="torchvision:resnet18?num_classes=10")
    parser.add_argument("--task", default="digits")
    parser.add_argument("--copies", type=int, default=12, help="candidates per iteration, all copies")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop after the iteration that crosses it")
    parser.add_argument("--backends", default="eager")
    parser.add_argument("--rounds", type=int, default=Pairing().rounds)
    parser.add_argument("--block-time", type=float, default=Pairing().block_s,
                        help="seconds per timed block (0.02: a short run, as edgebench prune --block-time 0.02)")
    parser.add_argument("--confirm-rounds", type=int, default=CONFIRM_ROUNDS, help="as edgebench prune's")
    parser.add_argument("--confirm-block-time", type=float, default=CONFIRM_BLOCK_S, help="as edgebench prune's")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--store", default=None, help="results store (default: OUT/results.db)")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="measure nothing: the tables again from a run's keep_rule_aa.json, every test judged "
                             "by the current keep rule")
    args = parser.parse_args()
    if args.copies < 1 or args.iterations < 1 or args.rounds < 2 or args.confirm_rounds < 2:
        sys.exit("keep_rule_aa.py: error: --copies and --iterations must be at least 1, --rounds and "
                 "--confirm-rounds at least 2")
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        results = _from_json(args.from_json) if args.from_json else run(args)
    except UsageError as exc:
        sys.exit(f"keep_rule_aa.py: error: {exc}")
    results["factorised"] = factorised(results)
    (args.out / "keep_rule_aa.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    table = markdown(results)
    (args.out / "keep_rule_aa.md").write_text(table, encoding="utf-8")
    print(table)


def identical_copies(spec: str, task, count: int) -> list[torch.nn.Module]:
    """``count`` copies of the model; UsageError unless their weights and outputs are equal."""
    original = build_module(prunable_model(spec, task).resolved.recipe).eval()
    copies = [copy.deepcopy(original) for _ in range(count)]
    reference = original.state_dict()
    with torch.no_grad():
        expected = original(task.example_input)
        for module in copies:
            state = module.state_dict()
            if state.keys() != reference.keys() or not all(torch.equal(state[k], reference[k]) for k in state):
                raise UsageError("a copy's state dict differs from the model's")
            if not torch.equal(module(task.example_input), expected):
                raise UsageError("a copy's output differs from the model's")
    return copies


def run(args: argparse.Namespace) -> dict:
    task = load_task(args.task)
    shape = "x".join(str(d) for d in task.example_input.shape[1:])
    backends = [backend.strip() for backend in args.backends.split(",")]
    pairing = Pairing(rounds=args.rounds, block_s=args.block_time)
    retry = Pairing(rounds=args.rounds * RETRY_ROUNDS_FACTOR, block_s=args.block_time)
    confirm = Pairing(rounds=args.confirm_rounds, block_s=args.confirm_block_time)
    definition = available_definition("local")
    settings = Settings(min_time_s=0, max_time_s=0, min_iterations=1, warmup_s=pairing.warmup_s, target_ci=0,
                        timeout_s=900, threads=args.threads, processes=1)
    results = {"model": args.model, "task": task.name, "copies": args.copies, "backends": backends,
               "rounds": args.rounds, "retry_rounds": retry.rounds, "block_s": pairing.block_s,
               "confirm_rounds": confirm.rounds, "confirm_block_s": confirm.block_s,
               "warmup_s": pairing.warmup_s, "threads": args.threads, "target": definition.name,
               "torch": torch.__version__, "confirm_alpha": keep_rule.CONFIRM_ALPHA,
               "confirm_margin": keep_rule.CONFIRM_MARGIN,
               "date": datetime.date.today().isoformat(), "iterations": []}
    store = args.store or str(args.out / "results.db")
    floor = blocks_seconds(args.copies, pairing, retry.rounds, confirm)
    print(f"warm-up and timed blocks: {floor['screen']:.1f} s per screen, about {floor['retry']:.1f} s per retry, "
          f"{floor['confirmation']:.1f} s per confirmation, {floor['every_copy']:.1f} s per run of every copy at "
          f"the confirmation's pairing; expect at most {900 / floor['iteration']:.0f} iterations "
          "per 15 minutes, fewer by the worker start-up of each paired run (the measured pace follows every "
          "iteration)")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch, \
            run_session(store, tags={"command": "benchmark-keep-rule-aa"}, log=print) as session, \
            session.stage(definition, "cpu", measure_power=False) as ready:
        sweep = ready.sweep(settings, threads=args.threads)
        modules = identical_copies(args.model, task, args.copies + 2)
        current, baseline, *copies = [saved_model(module, Path(scratch) / f"{index}.pt", shape,
                                                  f"{args.model} (copy {index})", None)
                                      for index, module in enumerate(modules)]

        def ratios(models, look: Pairing, roles) -> list[dict]:
            """Each candidate's ratio to the current model per backend, from one paired run per backend."""
            found = [{} for _ in models]
            for backend in backends:
                paired = measure_paired(sweep, [current, baseline] + models, backend, look,
                                        roles=["current", "baseline"] + [roles] * len(models))
                session.keep_all(entry.record for entry in paired.entries)
                failed = [entry.error for entry in paired.entries if not entry.ok]
                if failed:
                    raise UsageError(f"{backend}: {failed[0]}")
                for index in range(len(models)):
                    found[index][backend] = paired.ratio(index + 2, 0)
            return found

        first = time.perf_counter()  # the pace leaves out the set-up: building, checking and saving the copies
        try:
            for number in range(1, args.iterations + 1):
                results["iterations"].append(iteration(copies, ratios, pairing, retry, confirm))
                row = results["iterations"][-1]
                pace = (time.perf_counter() - first) / number
                print(f"iteration {number}: old rule {'keeps' if row['old_keeps'] else 'keeps nothing'}, "
                      f"corrected rule {'keeps' if row['new_keeps'] else 'keeps nothing'} "
                      f"({pace:.1f} s per iteration so far: about {900 / pace:.0f} per 15 minutes)")
                if args.max_minutes is not None and time.perf_counter() - started > args.max_minutes * 60:
                    break
        except KeyboardInterrupt:
            print(f"interrupted: the table covers the {len(results['iterations'])} iterations completed")
        results["run_id"] = session.run_id
    results["wall_s"] = round(time.perf_counter() - started, 1)
    return results


def _from_json(path: Path) -> dict:
    """A measured run's results from ``path``, judged again (``rejudged``); UsageError when unreadable."""
    try:
        return rejudged(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"cannot read {path}: {exc}")


def rejudged(results: dict) -> dict:
    """A measured run's results with every confirmation judged by the current keep rule (its
    alpha and margin); the ratios as measured."""
    for row in results["iterations"]:
        row["new_keeps"] = row["confirmation"] is not None and keep_rule.confirmed(_measured(row["confirmation"]))
    return {**results, "confirm_alpha": keep_rule.CONFIRM_ALPHA, "confirm_margin": keep_rule.CONFIRM_MARGIN}


def blocks_seconds(copies: int, pairing: Pairing, retry_rounds: int, confirm: Pairing) -> dict:
    """Seconds of warm-up and timed blocks in an iteration's paired runs, worker start-up not
    counted. ``iteration``: the usual A/A iteration, a screen with no pass, then the retry of the
    copies that measured faster by chance (about half), then every copy at the confirmation's pairing."""
    def run_s(models: int, look: Pairing) -> float:
        return models * (look.warmup_s + look.rounds * look.block_s)
    screen = run_s(copies + 2, pairing)
    retry = run_s(copies // 2 + 2, Pairing(rounds=retry_rounds, block_s=pairing.block_s))
    every_copy = run_s(copies + 2, confirm)
    return {"screen": screen, "retry": retry, "confirmation": run_s(3, confirm), "every_copy": every_copy,
            "iteration": screen + retry + every_copy}


def iteration(copies, ratios, pairing: Pairing, retry: Pairing, confirm: Pairing) -> dict:
    """One A/A iteration of the loop's measurements; what each rule made of it."""
    screen = ratios(copies, pairing, "candidate")
    passed = [index for index, r in enumerate(screen) if keep_rule.faster(r)]
    undecided = [index for index, r in enumerate(screen) if keep_rule.undecided(r)]
    again = []
    if not passed and undecided:
        again = ratios([copies[index] for index in undecided], retry, "candidate")
        passed = [undecided[index] for index, r in enumerate(again) if keep_rule.faster(r)]
        chosen_ratios = {undecided[index]: r for index, r in enumerate(again)}
    else:
        chosen_ratios = dict(enumerate(screen))
    row = {"screen": [_shown(r) for r in screen], "retry": [_shown(r) for r in again],
           "old_keeps": bool(passed), "confirmation": None, "new_keeps": False}
    if passed:
        # Equally accurate survivors: the loop keeps the largest gain, the lowest ratio on the slowest backend.
        chosen = min(passed, key=lambda index: max(r.ratio for r in chosen_ratios[index].values()))
        confirmation = ratios([copies[chosen]], confirm, "confirmation")[0]
        row["confirmation"] = _shown(confirmation)
        row["new_keeps"] = keep_rule.confirmed(confirmation)
    row["every_copy"] = [_shown(r) for r in ratios(copies, confirm, "candidate")]
    return row


def _shown(ratios: dict) -> dict:
    return {backend: {**r.as_dict(), "p_not_faster": keep_rule.p_not_faster(r)} for backend, r in ratios.items()}


def interval(count: int, total: int) -> tuple[float, float]:
    """Clopper-Pearson 95% interval of a rate."""
    found = scipy_stats.binomtest(count, total).proportion_ci(confidence_level=0.95, method="exact")
    return found.low, found.high


def share(count: int, total: int) -> str:
    if not total:
        return "none measured"
    low, high = interval(count, total)
    return f"{count}/{total} = {count / total:.1%} (95% CI {low:.1%} to {high:.1%})"


def _measured(shown: dict) -> dict[str, Ratio]:
    """A ratio per backend back from its ``_shown`` form, for the keep rule's own tests."""
    return {backend: Ratio(v["ratio"], v["ci95"][0], v["ci95"][1], v["rounds"]) for backend, v in shown.items()}


def looks(rows: list[dict]) -> dict[str, dict]:
    """Per kind of paired run (screen, retry, confirmation; a run is one paired run per backend): how
    many runs, how many copies measured in them, how many passed the screen's test
    (``keep_rule.faster``) and how many the confirmation's (``keep_rule.confirmed``). Every copy is
    identical to the current model, so each pass is a false positive of that test."""
    runs = {"screen": [row["screen"] for row in rows],
            "retry": [row["retry"] for row in rows if row["retry"]],
            "confirmation": [[row["confirmation"]] for row in rows if row["confirmation"] is not None],
            "every_copy": [row["every_copy"] for row in rows if row.get("every_copy")]}
    found = {}
    for kind, sessions in runs.items():
        measured = [_measured(shown) for session in sessions for shown in session]
        found[kind] = {"runs": len(sessions), "copies": len(measured),
                       "below_1": sum(keep_rule.faster(r) for r in measured),
                       "confirmed": sum(keep_rule.confirmed(r) for r in measured)}
    return found


def false_keep_bound(picked: int, iterations: int, confirmed: int, tests: int) -> dict:
    """The corrected rule's false-keep rate as P(pick) x P(confirm), with P(pick) = ``picked`` of
    ``iterations`` and P(confirm) = ``confirmed`` of ``tests``. Valid when the confirmation's
    verdict is independent of the pick. ``upper``: the product of the two 95% Clopper-Pearson upper
    ends; each fails with at most 2.5%, so both hold, and the product bounds the rate, with at
    least 95%."""
    if not iterations or not tests:
        return {"estimate": None, "upper": None}
    return {"estimate": picked / iterations * confirmed / tests,
            "upper": interval(picked, iterations)[1] * interval(confirmed, tests)[1]}


def factorised(results: dict) -> dict:
    """The factorised estimate of the corrected rule's rate from every test the run measured at the
    confirmation's pairing."""
    rows = results["iterations"]
    counts = looks(rows)
    picked = sum(row["old_keeps"] for row in rows)
    at_confirmation = [counts["confirmation"], counts["every_copy"]]
    confirmed = sum(c["confirmed"] for c in at_confirmation)
    tests = sum(c["copies"] for c in at_confirmation)
    return {"looks": counts, "picked": picked, "iterations": len(rows), "confirmed": confirmed, "tests": tests,
            **false_keep_bound(picked, len(rows), confirmed, tests)}


def markdown(results: dict) -> str:
    rows = results["iterations"]
    n = len(rows)
    estimate, alpha, rounds = results["factorised"], results["confirm_alpha"], results["rounds"]
    test = f"one-sided t, faster by more than {results.get('confirm_margin', 0):.0%}, at {alpha:g}"
    confirm = f"{results['confirm_rounds']} rounds of {results['confirm_block_s']:g} s"
    counts = estimate["looks"]
    minutes = results["wall_s"] / 60
    factorised_cell = "none measured" if estimate["estimate"] is None else (
        f"{estimate['picked']}/{n} x {estimate['confirmed']}/{estimate['tests']} = {estimate['estimate']:.2%}; "
        f"at most {estimate['upper']:.2%} (95%)")

    def look_row(label: str, found: dict) -> str:
        return (f"| {label} | {found['runs']} | {found['copies']} | {share(found['below_1'], found['copies'])} | "
                f"{share(found['confirmed'], found['copies'])} |")

    pooled = {key: sum(found[key] for found in counts.values()) for key in ("runs", "copies", "below_1", "confirmed")}
    return "\n".join([
        f"# The keep rule on A/A iterations ({results['date']})",
        "",
        f"{results['model']} on {results['task']}, {results['copies']} identical copies as the candidates of each "
        f"iteration, backends {', '.join(results['backends'])}, {rounds} paired rounds of "
        f"{results['block_s']:g} s blocks ({results['retry_rounds']} on the retry; the confirmation {confirm}), "
        f"warm-up {results['warmup_s']:g} s, "
        f"threads {results['threads'] or 'default'}, torch {results['torch']}; every iteration measured live through "
        f"the loop's paired worker runs. {n} iterations, {counts['retry']['runs']} with a retry, "
        f"{counts['confirmation']['runs']} with a confirmation run, each with a run of every copy at the "
        f"confirmation's pairing; wall {minutes:.1f} min.",
        "",
        "| rule | estimate | iterations that kept a copy (not faster) |",
        "| --- | --- | --- |",
        f"| old: 95% interval below 1, retry at {results['retry_rounds'] // rounds}x rounds | live iteration rate | "
        f"{share(sum(row['old_keeps'] for row in rows), n)} |",
        f"| corrected (default): the same, then confirmed in a fresh paired run ({test}) | "
        f"live iteration rate | {share(sum(row['new_keeps'] for row in rows), n)} |",
        f"| corrected (default) | factorised: P(the old rule picks a copy, live) x P(an A/A copy passes the "
        f"confirmation's test at its pairing, per test: the last two rows below) | {factorised_cell} |",
        "",
        "Per-test A/A pass rates, every copy of every paired run (the factorised estimate's second factor: the runs "
        "at the confirmation's pairing):",
        "",
        f"| paired runs | runs | copies tested | 95% interval below 1 (the screen's test, nominal 2.5%) | "
        f"{test} (the confirmation's test, nominal {alpha:.0%} or less) |",
        "| --- | --- | --- | --- | --- |",
        look_row(f"screen ({results['copies'] + 2} models, {rounds} rounds)", counts["screen"]),
        look_row(f"retry (the undecided copies + 2, {results['retry_rounds']} rounds)", counts["retry"]),
        look_row(f"confirmation (3 models, {confirm}, live)", counts["confirmation"]),
        look_row(f"every copy at the confirmation's pairing ({results['copies'] + 2} models, {confirm})",
                 counts["every_copy"]),
        look_row("all, pooled", pooled),
        "",
        "Copies in one screen or retry run share the current model's blocks (every ratio divides by them), so their "
        "tests are correlated within a run; the intervals count copies as independent and are optimistic. The "
        "factorised estimate assumes that the confirmation, a fresh worker process measured after the choice, "
        "passes the chosen copy with the per-test probability of any A/A copy, independently of the screen that "
        "chose it. Its bound is the product of the two intervals' upper ends: each fails with at most 2.5%, so "
        "both hold, and so does the bound, with at least 95% (as far as the intervals themselves hold).",
        "",
    ])


if __name__ == "__main__":
    main()

"""Paired measurement: several models alternate in short timed blocks.

Used by the pruner to judge a candidate against the current model, and by ``regress --confirm``.
On a shared machine the absolute latency drifts 20 to 40% between minutes and a whole process can
sit slower than the next, but models that alternate every fraction of a second live through the
same conditions, so the ratio of their block medians is steady where their absolute latencies are not.

Every model is loaded, bound and warmed up first; then each round times one block per model in
the order ``block_orders`` gives: randomised and counterbalanced, so neither a drift within a
round nor a model's position after another favours anyone. Each block starts with one untimed
call, which pays for the caches the previous model evicted. Only one model runs at a time; the
caller turns ONNX Runtime's thread spinning off, so an idle session's threads do not compete with
the running one. The models share one worker process (``alternate``), or each has a long-lived
worker of its own that times one block on command (``edgebench.board.turn_taking``), when one
process cannot hold both sides. Board-side: Python 3.8, numpy.
"""

from __future__ import annotations

import random
import time

from edgebench.board.harness import LoopSettings, prepare, timed_loop, warm_up

# Large enough that the block's stopping rule is time alone.
_UNBOUNDED_ITERATIONS = 10 ** 9


class PairingSettings:
    """``seed`` draws the block order (``block_orders``); None, as in requests from before seeds,
    keeps the old order: as given on even rounds, reversed on odd ones."""

    def __init__(self, rounds=10, block_s=0.1, warmup_s=0.3, seed=None):
        if rounds < 2:
            raise ValueError("a paired measurement needs at least 2 rounds")
        self.rounds = rounds
        self.block_s = block_s
        self.warmup_s = warmup_s
        self.seed = seed

    @classmethod
    def from_dict(cls, values):
        return cls(**values)


def block_orders(count, rounds, seed=None):
    """The order of ``count`` models in each of ``rounds`` rounds, as lists of their positions.

    With a seed, rounds go in consecutive pairs: the first of a pair is a random permutation
    (``random.Random(seed)``), the second its reverse, so over each pair every model runs first
    and last equally often (for two models: each position once); an odd last round gets a fresh
    permutation. Without one: as given on even rounds, reversed on odd ones."""
    given = list(range(count))
    if seed is None:
        return [given if r % 2 == 0 else given[::-1] for r in range(rounds)]
    draw = random.Random(seed)
    orders = []
    while len(orders) < rounds:
        order = draw.sample(given, count)
        orders.append(order)
        if len(orders) < rounds:
            orders.append(order[::-1])
    return orders


def block_settings(block_s):
    """The timed loop's settings for one block of ``block_s`` seconds."""
    return LoopSettings(min_time_s=block_s, max_time_s=block_s, min_iterations=_UNBOUNDED_ITERATIONS,
                        warmup_s=0.0, target_ci=0.0)


def time_block(runner, block, clock=time.perf_counter):
    """One untimed call (it pays for the caches another model evicted), then one timed block."""
    runner.infer()
    runner.synchronize()
    samples, _ = timed_loop(runner.infer, runner.synchronize, block, clock)
    return samples


def load_all(runners, inputs, on_failure, clock=time.perf_counter):
    """Import, load, bind (each runner to its ``inputs``) and run each runner once;
    ``on_failure(exc)`` turns a runner's failure into its entry, so one broken candidate leaves
    the others measured. The caller closes every runner, loaded or not (the worker's ``handle_paired``)."""
    entries = []
    for runner, runner_inputs in zip(runners, inputs):
        try:
            entry = prepare(runner, runner_inputs, clock)
        except Exception as exc:  # classified by the worker, like a single measurement's
            entries.append(on_failure(exc))
            continue
        entries.append(dict(entry, status="ok", blocks=[]))
    return entries


def alternate(runners, entries, settings, clock=time.perf_counter):
    """Warm every loaded runner up, then time ``settings.rounds`` rounds of one block each;
    each entry gets ``blocks`` (one list of samples per round) and ``warmup_iterations``.
    Returns the orders used: per round, the indices of ``entries`` as they ran."""
    live = [i for i, entry in enumerate(entries) if entry["status"] == "ok"]
    for i in live:
        entries[i]["warmup_iterations"] = warm_up(runners[i], settings.warmup_s, clock)
    block = block_settings(settings.block_s)
    orders = [[live[position] for position in order]
              for order in block_orders(len(live), settings.rounds, settings.seed)]
    for order in orders:
        for i in order:
            entries[i]["blocks"].append(time_block(runners[i], block, clock))
    return orders

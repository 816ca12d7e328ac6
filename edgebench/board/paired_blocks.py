"""Paired measurement: several models alternate in short timed blocks in one worker process.

Used by the pruner to judge a candidate against the current model. On a shared machine the
absolute latency drifts 20 to 40% between minutes and a whole process can sit slower than the
next, but models that alternate every fraction of a second live through the same conditions,
so the ratio of their block medians is steady where their absolute latencies are not.

Every model is loaded, bound and warmed up first; then each round times one block per model,
in order on even rounds and in reverse on odd ones, so a drift within a round favours no one.
Each block starts with one untimed call, which pays for the caches the previous model evicted.
Only one model runs at a time; the caller turns ONNX Runtime's thread spinning off, so an idle
session's threads do not compete with the running one. Board-side: Python 3.8, numpy.
"""

from __future__ import annotations

import time

from edgebench.board.harness import LoopSettings, prepare, timed_loop, warm_up

# Large enough that the block's stopping rule is time alone.
_UNBOUNDED_ITERATIONS = 10 ** 9


class PairingSettings:
    def __init__(self, rounds=10, block_s=0.1, warmup_s=0.3):
        if rounds < 2:
            raise ValueError("a paired measurement needs at least 2 rounds")
        self.rounds = rounds
        self.block_s = block_s
        self.warmup_s = warmup_s

    @classmethod
    def from_dict(cls, values):
        return cls(**values)


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
    each entry gets ``blocks`` (one list of samples per round) and ``warmup_iterations``."""
    live = [i for i, entry in enumerate(entries) if entry["status"] == "ok"]
    for i in live:
        entries[i]["warmup_iterations"] = warm_up(runners[i], settings.warmup_s, clock)
    block = LoopSettings(min_time_s=settings.block_s, max_time_s=settings.block_s,
                     min_iterations=_UNBOUNDED_ITERATIONS, warmup_s=0.0, target_ci=0.0)
    for round_index in range(settings.rounds):
        order = live if round_index % 2 == 0 else live[::-1]
        for i in order:
            runner = runners[i]
            runner.infer()
            runner.synchronize()
            samples, _ = timed_loop(runner.infer, runner.synchronize, block, clock)
            entries[i]["blocks"].append(samples)
    return entries

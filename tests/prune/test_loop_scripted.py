"""The greedy loop with scripted measurements: keep, reject, retry, stop and undo, deterministic.

The paired measurement is replaced through the Pruner's ``measure`` seam by ``ScriptedTarget``: it
loads each model file as the worker does and gives it a latency from its channel widths (on a
staircase of 16 channels, as vector kernels run), with per-round noise that the test scripts call
by call. The task scores a model by its widths. Everything else is the real loop: Torch-Pruning
surgery, the keep rule, the files, the records and the report.
"""

import math

import pytest
import torch

from edgebench.board.torch_models import build_module
from edgebench.models import resolve_model
from edgebench.prune.baseline import Prunable
from edgebench.prune.keep_rule import CONFIRM_ALPHA
from edgebench.prune.loop import FINAL_ROUNDS_FACTOR, NOT_CONFIRMED, NOT_FASTER, REFUTED_IN_A_ROW, \
    RETRY_ROUNDS_FACTOR, PruneConfig, Pruner
from edgebench.sweep.paired import Pairing, PairedEntry, PairedMeasurement
from records import synthetic_record
from worker_models import tiny

ROUNDS = 6
CONFIRM_BLOCK = 0.01
# A spread that leaves a 30% gain undecided at ROUNDS rounds (interval across 1), but not a 50% one.
WIDE = 0.5
STAIR = 16


def stair(channels: int) -> int:
    return math.ceil(channels / STAIR) * STAIR


def widths(module: torch.nn.Module) -> tuple[int, int]:
    first, second = module.features[0], module.features[2]
    return first.out_channels, second.out_channels


class ScriptedTarget:
    """``measure_paired`` with scripted blocks: latency from the widths' stairs, and per call a
    noise spread (``spreads``, then 0) added to every model but the reference as +s, -s, +s, ..."""

    def __init__(self, spreads=(), latency=None):
        self.spreads = list(spreads)
        self.latency = latency or (lambda first, second: stair(first) * (3 + stair(second)) + stair(second) * 10)
        self.calls = []

    def __call__(self, sweep, models, backend, pairing, roles=None):
        spread = self.spreads.pop(0) if self.spreads else 0.0
        self.calls.append({"roles": list(roles), "rounds": pairing.rounds, "block_s": pairing.block_s,
                           "names": [m.name for m in models], "spread": spread})
        entries = []
        for index, model in enumerate(models):
            latency = self.latency(*widths(build_module(model.recipe)))
            blocks = [[latency * math.exp(0.0 if index == 0 else spread * (-1) ** r)] * 3
                      for r in range(pairing.rounds)]
            record = synthetic_record(model=model.name, backend=backend, method="paired")
            entries.append(PairedEntry(model, "ok", None, blocks, record))
        return PairedMeasurement(backend, entries)


class ScriptedTask:
    """Scores a model by its widths (``score``); a fine-tune of ``wreck_from`` steps or more zeroes it."""

    name = "scripted"
    metric = "accuracy"

    def __init__(self, score=lambda first, second: 0.9, wreck_from=None):
        self.score = score
        self.wreck_from = wreck_from
        self.example_input = torch.randn(1, 3, 8, 8)

    def evaluate(self, model):
        if all(not p.detach().any() for p in model.parameters()):
            return 0.1
        return self.score(*widths(model))

    def finetune(self, model, steps):
        if self.wreck_from is not None and steps >= self.wreck_from:
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter.zero_()


def prune(tmp_path, target, task=None, **config):
    torch.manual_seed(0)
    path = tmp_path / "baseline.pt"
    torch.save(tiny(48), path)
    records = []
    # The confirmation at the screen's rounds (the scripted spreads are sized for them), its own block length.
    settings = dict(budget=0.1, step=0.9, max_iterations=1, final_finetune_steps=0, pairing=Pairing(rounds=ROUNDS),
                    confirm_pairing=Pairing(rounds=ROUNDS, block_s=CONFIRM_BLOCK))
    pruner = Pruner(task or ScriptedTask(), None, ["eager"], PruneConfig(**{**settings, **config}), tmp_path,
                    records.extend, measure=target)
    outcome = pruner.run(Prunable(resolve_model(str(path), ["3x8x8"]), None))
    return outcome, records


def roles(target):
    return [call["roles"][2:] for call in target.calls]


def test_a_clearly_faster_candidate_within_the_floor_is_confirmed_in_a_fresh_run_and_kept(tmp_path):
    target = ScriptedTarget()
    outcome, records = prune(tmp_path, target)
    report = outcome.report
    # Screen both groups' candidates, confirm the chosen one alone, then the final comparison.
    assert roles(target) == [["candidate", "candidate"], ["confirmation"], []]
    assert target.calls[1]["roles"] == ["current", "baseline", "confirmation"]
    # The confirmation measures at its own pairing; the screen and the final comparison at the loop's.
    assert [call["block_s"] for call in target.calls] == [Pairing().block_s, CONFIRM_BLOCK, Pairing().block_s]
    assert report["keep_rule"]["confirm_pairing"]["block_s"] == CONFIRM_BLOCK
    assert target.calls[2]["rounds"] == ROUNDS * FINAL_ROUNDS_FACTOR
    kept = [step for step in report["steps"] if step["verdict"] == "kept"]
    assert len(kept) == 1 and report["kept_steps"] == 1
    assert kept[0]["confirmation"]["ratio_to_current"]["eager"]["ci95"][1] < 1
    assert report["keep_rule"]["confirm_alpha"] == CONFIRM_ALPHA
    assert report["stop_reason"] == "stopped after 1 iterations"
    assert widths(outcome.model) in {(24, 48), (48, 24)}
    assert {r.env["prune"]["role"] for r in records} == {"current", "baseline", "candidate", "confirmation", "final"}
    confirmation = next(r for r in records if r.env["prune"]["role"] == "confirmation" and "candidate" in r.model)
    assert confirmation.env["prune"]["verdict"] == "kept"


def test_a_faster_candidate_under_the_floor_is_rejected_and_the_other_kept(tmp_path):
    task = ScriptedTask(score=lambda first, second: 0.5 if first < 48 else 0.9)
    outcome, _ = prune(tmp_path, ScriptedTarget(), task)
    steps = {tuple(step["channels"]) + (step["group"],): step for step in outcome.report["steps"]}
    under = steps[(48, 24, "features.0")]
    assert under["verdict"] == "rejected" and "is under the floor" in under["reason"]
    assert steps[(48, 24, "features.2")]["verdict"] == "kept"
    assert widths(outcome.model) == (48, 24)


def test_candidates_no_faster_are_rejected_without_a_retry_and_the_loop_stops(tmp_path):
    target = ScriptedTarget(latency=lambda first, second: 1.0)
    outcome, _ = prune(tmp_path, target, max_iterations=5)
    report = outcome.report
    assert roles(target) == [["candidate", "candidate"], []]  # no retry: none even measured faster
    assert all(step["reason"].startswith(NOT_FASTER) for step in report["steps"])
    assert report["stop_reason"].startswith("no candidate was both faster")
    assert report["kept_steps"] == 0 and widths(outcome.model) == (48, 48)


def test_undecided_candidates_are_measured_again_with_more_rounds_and_then_kept(tmp_path):
    # Screening so noisy that no gain clears it; the retry is quiet.
    target = ScriptedTarget(spreads=[WIDE * 2])
    outcome, _ = prune(tmp_path, target)
    assert roles(target) == [["candidate", "candidate"], ["candidate", "candidate"], ["confirmation"], []]
    assert target.calls[1]["rounds"] == ROUNDS * RETRY_ROUNDS_FACTOR
    assert outcome.report["kept_steps"] == 1


def test_undecided_candidates_that_stay_undecided_end_the_loop(tmp_path):
    target = ScriptedTarget(spreads=[WIDE * 2, WIDE * 2])
    outcome, _ = prune(tmp_path, target, max_iterations=5)
    assert roles(target) == [["candidate", "candidate"], ["candidate", "candidate"], []]
    assert outcome.report["kept_steps"] == 0
    assert all(step["reason"].startswith(NOT_FASTER) for step in outcome.report["steps"])
    assert outcome.report["stop_reason"].startswith("no candidate was both faster")


def test_a_choice_the_fresh_run_does_not_confirm_is_undone_and_the_same_model_screened_again(tmp_path):
    # The screen is quiet; the confirmation's noise leaves the gain short of one-sided 1%; the next
    # iteration screens the unchanged model and its quiet confirmation keeps the choice.
    target = ScriptedTarget(spreads=[0.0, WIDE])
    outcome, records = prune(tmp_path, target, max_iterations=2)
    report = outcome.report
    assert roles(target) == [["candidate", "candidate"], ["confirmation"], ["candidate", "candidate"],
                             ["confirmation"], []]
    refuted = [step for step in report["steps"] if step["reason"].startswith(NOT_CONFIRMED)]
    assert len(refuted) == 1 and refuted[0]["verdict"] == "rejected" and refuted[0]["iteration"] == 1
    ratio = refuted[0]["confirmation"]["ratio_to_current"]["eager"]
    assert ratio["ratio"] < 1  # measured faster, but not at the confirmation's level
    # Iteration 2 screened the baseline's widths again, and kept the same cut.
    assert [s["channels"] for s in report["steps"] if s["iteration"] == 2] == \
        [s["channels"] for s in report["steps"] if s["iteration"] == 1]
    assert report["kept_steps"] == 1 and widths(outcome.model) != (48, 48)


def test_refutations_in_a_row_stop_the_loop_with_nothing_kept(tmp_path):
    target = ScriptedTarget(spreads=[0.0, WIDE] * REFUTED_IN_A_ROW)
    outcome, records = prune(tmp_path, target, max_iterations=5)
    report = outcome.report
    assert roles(target) == [["candidate", "candidate"], ["confirmation"]] * REFUTED_IN_A_ROW + [[]]
    assert report["kept_steps"] == 0
    assert report["stop_reason"] == f"the chosen candidate was {NOT_CONFIRMED} in {REFUTED_IN_A_ROW} iterations in a row"
    assert widths(outcome.model) == (48, 48)
    assert not any(r.env["prune"].get("verdict") == "kept" for r in records)


def test_the_budget_stops_the_loop_on_the_confirmed_ratio_to_the_baseline(tmp_path):
    target = ScriptedTarget()
    outcome, _ = prune(tmp_path, target, budget=0.6, max_iterations=5)
    report = outcome.report
    assert report["stop_reason"].startswith("budget reached")
    kept = [step for step in report["steps"] if step["verdict"] == "kept"]
    assert kept[-1]["confirmation"]["ratio_to_baseline"]["eager"]["ratio"] <= 0.6
    assert all(step["confirmation"]["ratio_to_baseline"]["eager"]["ratio"] > 0.6 for step in kept[:-1])


def test_max_iterations_stops_a_loop_that_keeps_finding_gains(tmp_path):
    outcome, _ = prune(tmp_path, ScriptedTarget(), max_iterations=2)
    assert outcome.report["stop_reason"] == "stopped after 2 iterations" and outcome.report["kept_steps"] == 2


def test_a_final_fine_tune_that_lowers_the_metric_is_undone(tmp_path):
    outcome, _ = prune(tmp_path, ScriptedTarget(), ScriptedTask(wreck_from=100), final_finetune_steps=100)
    assert any("lowered accuracy" in warning for warning in outcome.report["warnings"])
    assert outcome.report["final"]["accuracy"] == 0.9
    assert any(p.detach().any() for p in outcome.model.parameters())


def test_a_final_comparison_that_finds_no_gain_is_a_warning_not_an_undo(tmp_path):
    # Screen, confirmation, then a noisy final pair: the kept step stays, the report warns.
    target = ScriptedTarget(spreads=[0.0, 0.0, WIDE * 2])
    outcome, _ = prune(tmp_path, target)
    assert outcome.report["kept_steps"] == 1
    assert any("not significantly faster than the baseline" in w for w in outcome.report["warnings"])
    assert widths(outcome.model) != (48, 48)


def test_the_staircase_widens_a_kept_cut_to_the_edge_of_its_stair_before_the_confirmation(tmp_path):
    # Cut to 24 of 48 channels: 24 to 32 cost the same on a 16-channel stair, so 32 replaces 24.
    target = ScriptedTarget()
    outcome, _ = prune(tmp_path, target, staircase=True)
    assert roles(target)[1][0] == "stair probe" and roles(target)[2] == ["confirmation"]
    steps = outcome.report["steps"]
    widened = [step for step in steps if step["reason"].startswith("widened to 32")]
    kept = [step for step in steps if step["verdict"] == "kept"]
    assert len(widened) == 1 and len(kept) == 1 and kept[0]["channels"] == [48, 32]
    assert kept[0]["confirmation"] is not None
    assert sorted(widths(outcome.model)) == [32, 48]


@pytest.mark.parametrize("spread, expected", [(0.0, True), (WIDE, False)])
def test_the_scripted_noise_does_what_the_tests_rely_on(spread, expected):
    """The premise of the retry and refutation tests: at ROUNDS rounds a 30%-or-so gain clears the
    confirmation with no noise and not with WIDE, and twice WIDE leaves it short of the screen."""
    from edgebench.prune.keep_rule import confirmed, faster, undecided
    from edgebench.sweep.paired import ratio_of

    def ratio(s):
        return ratio_of([[0.7 * math.exp(s * (-1) ** r)] for r in range(ROUNDS)], [[1.0]] * ROUNDS)

    assert confirmed({"eager": ratio(spread)}) is expected
    assert faster({"eager": ratio(WIDE / 2)}) and undecided({"eager": ratio(WIDE * 2)})

"""`edgebench prune --strategy static --regularise`: Torch-Pruning's group-norm regulariser in the
task's own training loop before the cut, against the same steps without it."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from edgebench.prune.digits import digits_task
from edgebench.prune.regularise import train_before_cut
from edgebench.prune.surgery import build_graph
from edgebench.prune.tasks import after_backward
from edgebench.results.store import Store
from tiny_residual import tiny_resnet
from worker_models import tiny

TASK = "digits?size=8"
STEPS = 30
# Stronger than the default 5e-4, so that 30 steps show what hundreds would.
STRENGTH = 5e-3


@pytest.fixture(scope="module")
def trained():
    """tiny_resnet trained a little on the digits, to be trained on before a cut."""
    model = tiny_resnet()
    digits_task(size=8).finetune(model, STEPS)
    return model


def weakest_half(norms: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    return {group: torch.argsort(norm)[: len(norm) // 2].tolist() for group, norm in norms.items()}


def test_the_regulariser_shrinks_the_weak_channels_more_than_the_same_plain_training_does(trained):
    arms = {}
    for regulariser in ("none", "group-norm"):
        model = copy.deepcopy(trained)
        # A fresh task per arm: both see the same batches, so the regulariser is the only difference.
        arms[regulariser] = train_before_cut(build_graph(model, torch.zeros(1, 3, 8, 8)), digits_task(size=8),
                                             regulariser, STRENGTH, STEPS)
    plain, regularised = arms["none"], arms["group-norm"]
    assert (plain.regularised_steps, regularised.regularised_steps) == (0, STEPS)
    assert plain.norms_before.keys() == regularised.norms_before.keys() and len(plain.norms_before) >= 3
    for group, norms in plain.norms_before.items():
        torch.testing.assert_close(norms, regularised.norms_before[group])  # one starting point
    # The weak channels are chosen before training, so the choice itself cannot favour either arm.
    weak = weakest_half(plain.norms_before)
    plain_weak, plain_strong = plain.shrinkage(weak)
    regularised_weak, regularised_strong = regularised.shrinkage(weak)
    assert plain_weak > 0.97, "plain training alone shrank the weak channels: the contrast shows nothing"
    assert regularised_weak < plain_weak - 0.03
    # Torch-Pruning's penalty grows as a channel's norm falls: the weak shrink faster than the strong.
    assert regularised_weak < regularised_strong


def test_the_hook_runs_between_backward_and_step_only_for_the_models_optimizer():
    model, other = tiny(4), tiny(4)
    seen = []

    def callback():
        seen.append(model.features[0].weight.grad is not None)

    task = digits_task(size=8)
    with after_backward(model, callback):
        task.finetune(other, 2)
        assert seen == []
        task.finetune(model, 3)
    assert seen == [True, True, True]  # the gradient is there when it runs
    task.finetune(model, 1)
    assert len(seen) == 3  # closed: nothing runs any more


@pytest.mark.parametrize("args, message", [
    (["--strategy", "static", "--reg-steps", "10"], "--reg-steps applies with --regularise (group-norm, none)"),
    (["--strategy", "static", "--reg-strength", "1e-3"], "--reg-strength applies with --regularise"),
    (["--regularise", "group-norm"], "--regularise applies to --strategy static only"),
    (["--strategy", "static", "--regularise", "l1"], "--regularise must be one of group-norm, none, not 'l1'"),
    (["--strategy", "static", "--regularise", "none", "--reg-strength", "1e-3"],
     "--reg-strength applies to --regularise group-norm"),
    (["--strategy", "static", "--regularise", "group-norm", "--reg-strength", "0"],
     "--reg-strength must be above 0, not 0"),
    (["--strategy", "static", "--regularise", "group-norm", "--reg-steps", "0"], "--reg-steps must be at least 1, not 0"),
    (["--strategy", "static", "--regularise", "group-norm", "--residual", "zero-pad"],
     "--regularise trains coupled groups sparse; --residual zero-pad cuts branches apart"),
])
def test_bad_regularise_options_are_one_line_and_exit_2(cli, tmp_path, args, message):
    proc = cli("prune", "--model", "tiny_residual:tiny_resnet", "--task", TASK, "--out", str(tmp_path / "o"), *args)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"edgebench: error: {message}")
    assert not (tmp_path / "o").exists()


def test_a_regularised_static_cut_records_the_training_and_the_norms_it_moved(cli, tmp_path):
    out = tmp_path / "regularised"
    proc = cli("prune", "--model", "tiny_residual:tiny_resnet", "--task", TASK, "--strategy", "static",
               "--criterion", "l1", "--ratio", "0.5", "--round-to", "1", "--regularise", "group-norm",
               "--reg-strength", str(STRENGTH), "--reg-steps", "20", "--train-steps", str(STEPS),
               "--finetune-steps", "1", "--final-finetune-steps", "1", "--rounds", "2", "--block-time", "0.02",
               "--threads", "1", "--store", "results.db", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    logged = " ".join(proc.stderr.split())  # the console wraps long lines
    assert f"training before the cut: 20 steps, group-norm regulariser of strength {STRENGTH:g}" in logged
    report = json.loads(proc.stdout)
    [step] = report["steps"]
    training = step["pre_cut_training"]
    assert (training["regulariser"], training["strength"], training["steps"], training["regularised_steps"]) == \
        ("group-norm", STRENGTH, 20, 20)
    assert 0 <= training["metric_after_training"] <= 1
    groups = training["groups"]
    assert groups and all(g["cut"]["channels"] + g["kept"]["channels"] > 0 for g in groups.values())
    cut = sum(g["cut"]["channels"] for g in groups.values())
    assert cut == step["channels"][0] - step["channels"][1]  # the norms are split as the cut split the channels
    # The premise, as the report states it: the removed channels' norm fell further than the kept ones'.
    shrink = training["norm_after_over_before"]
    assert shrink["cut"] < shrink["kept"] and not any("--regularise" in w for w in report["warnings"])
    assert sum(g["cut"]["norm_after"] for g in groups.values()) == pytest.approx(
        shrink["cut"] * sum(g["cut"]["norm_before"] for g in groups.values()))
    with Store.open(tmp_path / "results.db", create=False) as store:
        names = {record.model for record in store.records()}
    assert "tiny_residual:tiny_resnet [static cut of 0.5, trained 20 steps first with group-norm]" in names

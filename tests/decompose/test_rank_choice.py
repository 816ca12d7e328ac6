"""How a layer's rank is chosen: candidates, errors on the layer's real inputs, and the choice from
scripted latencies (a stand-in for the target), so every verdict here is deterministic."""

import pytest
import torch
from torch import nn

from edgebench.decompose.methods import decomposable_layers
from edgebench.decompose.ranks import RankRule, RankTrial, candidate_ranks, choose_rank, plan_layer
from edgebench.decompose.reconstruction import layer_inputs, relative_error
from edgebench.errors import UsageError
from edgebench.sweep.paired import Ratio


def ratio(value, half=0.02):
    return Ratio(value, value - half, value + half, 10)


def trial(rank, error, **ratios):
    return RankTrial(rank, rank * 100, error, dict(ratios))


def test_candidates_are_aligned_cheaper_than_the_layer_and_spread():
    # Break-even at rank 50 (50 x 20 = 1000 MACs): multiples of 8 below it.
    assert candidate_ranks(full_rank=96, macs=1000, macs_per_rank=20, round_to=8, count=10) == [8, 16, 24, 32, 40, 48]
    assert candidate_ranks(96, 1000, 20, 8, 3) == [8, 24, 48]
    assert candidate_ranks(96, 1000, 20, 8, 1) == [48]
    # Never above the full rank; none when even the smallest aligned rank costs more than the layer.
    assert candidate_ranks(full_rank=21, macs=10 ** 6, macs_per_rank=1, round_to=8, count=4) == [8, 16]
    assert candidate_ranks(full_rank=64, macs=100, macs_per_rank=20, round_to=8, count=4) == []


def test_the_fastest_rank_within_the_error_budget_that_measured_significantly_faster_is_chosen():
    rule = RankRule(max_error=0.1)
    trials = [
        trial(8, 0.30, eager=ratio(0.40)),  # fastest, but over the error budget
        trial(16, 0.09, eager=ratio(0.60), onnxruntime=ratio(0.70)),
        trial(24, 0.05, eager=ratio(0.55), onnxruntime=ratio(0.75)),  # worst backend 0.75: slower than 16's 0.70
        trial(32, 0.02, eager=Ratio(0.50, 0.40, 1.10, 10), onnxruntime=ratio(0.5)),  # not significant on eager
    ]
    chosen, reason = choose_rank(trials, rule)
    assert chosen.rank == 16 and "fastest of 2" in reason
    # A required speedup rules out what does not reach it on every backend.
    chosen, reason = choose_rank(trials, RankRule(max_error=0.1, min_speedup=1.4))  # 16's 0.70 <= 1 / 1.4
    assert chosen.rank == 16 and "fastest of 1" in reason
    chosen, reason = choose_rank(trials, RankRule(max_error=0.1, min_speedup=1.5))
    assert chosen is None and "by 1.5x" in reason


def test_ties_go_to_the_larger_rank_and_a_failed_measurement_never_wins():
    rule = RankRule(max_error=1.0)
    chosen, _ = choose_rank([trial(8, 0.2, eager=ratio(0.5)), trial(16, 0.1, eager=ratio(0.5))], rule)
    assert chosen.rank == 16
    chosen, reason = choose_rank([trial(8, 0.2, eager=None), trial(16, 0.1)], rule)
    assert chosen is None and "none of the 2 rank(s)" in reason
    chosen, reason = choose_rank([trial(8, 0.5), trial(16, 0.3)], RankRule(max_error=0.1))
    assert chosen is None and "the best, rank 16, has 0.3" in reason


class ScriptedTarget:
    """``ranks.MeasureLayer`` answering from a table of latency ratios by rank; it records what it was asked."""

    def __init__(self, table):
        self.table, self.calls = table, []

    def __call__(self, layer, modules, example, labels):
        self.calls.append((layer, [label.get("rank") for label in labels], tuple(example.shape)))
        assert isinstance(modules[0], nn.Conv2d) and all(isinstance(m, nn.Sequential) for m in modules[1:])
        return {"eager": [self.table[label["rank"]] for label in labels[1:]]}


def test_plan_layer_measures_only_ranks_within_the_budget_and_keeps_the_fastest():
    torch.manual_seed(0)
    conv = nn.Conv2d(32, 32, 3, padding=1).eval()
    inputs = torch.randn(8, 32, 12, 12)
    all_in = plan_layer("features.2", conv, "channel", inputs, RankRule(max_error=10.0, candidates=3),
                        ScriptedTarget({8: ratio(0.9), 16: ratio(0.5), 24: ratio(0.7)}))
    assert [t.rank for t in all_in.trials] == [8, 16, 24]  # break-even 32 x 9 x 32 / (9 x 32 + 32) = 28.8
    assert all_in.rank == 16 and all_in.replacement[0].out_channels == 16
    errors = [t.error for t in all_in.trials]
    assert errors == sorted(errors, reverse=True) and errors[-1] > 0
    assert errors[1] == pytest.approx(relative_error(conv, all_in.replacement, inputs))
    # A budget between the errors of ranks 16 and 24: only rank 24 is measured, and it is chosen.
    target = ScriptedTarget({8: ratio(0.9), 16: ratio(0.5), 24: ratio(0.7)})
    budget = (errors[1] + errors[2]) / 2
    tight = plan_layer("features.2", conv, "channel", inputs, RankRule(max_error=budget, candidates=3), target)
    assert target.calls == [("features.2", [None, 24], (1, 32, 12, 12))]
    assert tight.rank == 24 and tight.trials[0].ratios == {} and tight.as_dict()["rank"] == 24
    # Nothing within the budget: nothing measured, the layer stays whole.
    target = ScriptedTarget({})
    none = plan_layer("features.2", conv, "channel", inputs, RankRule(max_error=errors[-1] / 2, candidates=3), target)
    assert none.rank is None and none.replacement is None and target.calls == []


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.depthwise = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.point = nn.Conv2d(16, 32, 1)
        self.unused = nn.Conv2d(32, 32, 3)

    def forward(self, x):
        return self.point(self.depthwise(self.stem(x)))


def test_layers_are_chosen_by_method_and_pattern_with_reasons_for_the_rest():
    net = Net()
    spatial = decomposable_layers(net, "spatial")
    assert spatial.chosen == ["stem", "unused"]
    assert dict(spatial.skipped) == {"depthwise": "grouped (groups=16)",
                                     "point": "its 1x1 kernel is already one-dimensional"}
    assert decomposable_layers(net, "channel", ("p*", "s*")).chosen == ["stem", "point"]
    with pytest.raises(UsageError, match="--layers 'layer4.*' matches no convolution"):
        decomposable_layers(net, "channel", ("layer4.*",))
    with pytest.raises(UsageError, match="no convolution to decompose with the spatial SVD"):
        decomposable_layers(net, "spatial", ("point",))
    with pytest.raises(UsageError, match="--method must be one of spatial, channel"):
        decomposable_layers(net, "tucker")
    # The inputs each layer sees inside the network; a layer the forward never calls has none.
    inputs = layer_inputs(net, ["stem", "point", "unused"], torch.randn(4, 3, 8, 8))
    assert set(inputs) == {"stem", "point"} and inputs["point"].shape == (4, 16, 8, 8)

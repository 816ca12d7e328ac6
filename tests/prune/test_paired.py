"""Paired measurement through real worker processes: models alternate in blocks, ratios with
intervals, one record per model saying how the pair was measured."""

from pathlib import Path

import pytest

from edgebench.board.machine import machine_identity
from edgebench.models import InputSpec, ResolvedModel
from edgebench.sweep.paired import Pairing, measure_paired, ratio_of

from local_sweep import local_sweep

SUPPORT = Path(__file__).resolve().parents[1] / "support"
FAST = Pairing(rounds=4, block_s=0.03, warmup_s=0.05)


def model(factory, **kwargs):
    recipe = {"format": "callable", "target": f"worker_models:{factory}", "kwargs": kwargs,
              "sys_path": [str(SUPPORT)]}
    name = f"worker_models:{factory}" + "".join(f"?{k}={v}" for k, v in kwargs.items())
    return ResolvedModel(spec=name, name=name, kind="torch", recipe=recipe, onnx_path=None,
                         fingerprint=f"sha256:{name}", inputs=(InputSpec("input0", ("batch", 3, 16, 16), "float32"),))


@pytest.fixture
def sweep():
    return local_sweep("run-paired", warmup_s=0.05)


def test_a_much_narrower_model_measures_significantly_faster_on_both_backends(sweep):
    wide, narrow = model("tiny", channels=96), model("tiny", channels=8)
    for backend in ("eager", "onnxruntime"):
        paired = measure_paired(sweep, [wide, narrow], backend, FAST, roles=["current", "candidate"])
        assert [entry.status for entry in paired.entries] == ["ok", "ok"]
        ratio = paired.ratio(1, 0)
        assert ratio.rounds == FAST.rounds
        assert ratio.low <= ratio.ratio <= ratio.high
        assert ratio.faster, ratio
        wide_entry, narrow_entry = paired.entries
        assert len(narrow_entry.blocks) == FAST.rounds
        assert narrow_entry.p50_ms < wide_entry.p50_ms
        record = narrow_entry.record
        assert record.status == "ok" and record.backend == backend and record.run_id == "run-paired"
        assert record.iterations == sum(len(block) for block in narrow_entry.blocks)
        assert record.env["pairing"]["role"] == "candidate" and record.env["pairing"]["rounds"] == FAST.rounds
        assert record.method == "paired" and record.machine_id == machine_identity({"host": "test"})
        assert record.memory_mb.host_peak is None  # the process held both models
        if backend == "onnxruntime":
            assert record.backend_options.get("allow_spinning") is False
            assert record.env["pairing"]["spinning"].startswith("off")


def test_a_candidate_that_cannot_load_is_an_error_entry_and_the_others_are_measured(sweep):
    paired = measure_paired(sweep, [model("tiny"), model("not_a_module"), model("tiny", channels=4)], "eager", FAST)
    assert [entry.status for entry in paired.entries] == ["ok", "error", "ok"]
    assert "did not produce a torch.nn.Module" in paired.entries[1].error
    assert paired.entries[1].record.status == "error"
    assert paired.ratio(1) is None and paired.ratio(2) is not None


def test_a_reference_that_cannot_load_fails_every_entry(sweep):
    paired = measure_paired(sweep, [model("not_a_module"), model("tiny")], "eager", FAST)
    assert [entry.status for entry in paired.entries] == ["error", "error"]
    assert paired.entries[1].error.startswith("the reference model:")
    assert paired.ratio(1) is None


def test_the_ratio_is_the_geometric_mean_of_per_round_median_ratios_with_a_t_interval():
    reference = [[10.0, 10.0, 11.0], [20.0, 20.0], [10.0], [10.0]]
    candidate = [[5.0, 5.0, 9.0], [10.0], [6.0], [4.0]]
    ratio = ratio_of(candidate, reference)
    assert ratio.ratio == pytest.approx((0.5 * 0.5 * 0.6 * 0.4) ** 0.25)
    assert ratio.low < ratio.ratio < ratio.high < 1.0 and ratio.faster
    same = ratio_of(reference, reference)
    assert (same.ratio, same.low, same.high) == (1.0, 1.0, 1.0) and not same.faster

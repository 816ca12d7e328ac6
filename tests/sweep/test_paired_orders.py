"""The one-process paired measurement runs its models in the seeded, counterbalanced order and
says in every record which seed and which orders it used; real ONNX Runtime workers."""

from __future__ import annotations

import dataclasses

from edgebench.board.paired_blocks import block_orders
from edgebench.results.regress import environment_differences
from edgebench.sweep.paired import Pairing, measure_paired

from test_turns import pair, sweep  # noqa: F401 (fixtures)

FAST = Pairing(rounds=5, block_s=0.01, warmup_s=0.02)


def test_a_given_seed_is_sent_used_and_recorded(sweep, pair):  # noqa: F811
    paired = measure_paired(sweep, pair, "onnxruntime", Pairing(5, 0.01, 0.02, seed=12))
    for entry in paired.entries:
        pairing = entry.record.env["pairing"]
        assert (pairing["seed"], pairing["orders"], pairing["workers"]) == (12, block_orders(2, 5, 12), 1)
        assert "counterbalanced" in pairing["method"] and len(entry.blocks) == 5


def test_each_measurement_draws_a_seed_of_its_own_which_regress_does_not_call_a_change(sweep, pair):  # noqa: F811
    records = [measure_paired(sweep, pair, "onnxruntime", FAST).entries[0].record for _ in range(2)]
    for record in records:
        assert record.env["pairing"]["orders"] == block_orders(2, 5, record.env["pairing"]["seed"])
    assert records[0].env["pairing"]["seed"] != records[1].env["pairing"]["seed"]
    assert not [change for change in environment_differences(*records) if change.startswith("pairing.")]


def test_a_failed_candidate_is_left_out_of_the_orders(sweep, pair, tmp_path):  # noqa: F811
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    models = [pair[0], dataclasses.replace(pair[1], onnx_path=broken, files=(broken,)), pair[1]]
    paired = measure_paired(sweep, models, "onnxruntime", Pairing(4, 0.01, 0.02, seed=2))
    assert [entry.status for entry in paired.entries] == ["ok", "error", "ok"]
    orders = paired.entries[0].record.env["pairing"]["orders"]
    assert orders == [[[0, 2][position] for position in order] for order in block_orders(2, 4, 2)]

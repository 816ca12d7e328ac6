"""One comparison key for every reader: the run table's speedup column pairs as compare does."""

from __future__ import annotations

import pytest

from edgebench.cli.render import speedups
from edgebench.results.compare import compare
from edgebench.results.key import KEY_FIELDS, key_fields

from records import synthetic_record


def test_key_fields_less_the_varied_ones_and_no_unknown_name():
    assert key_fields(("backend",)) == tuple(name for name in KEY_FIELDS if name != "backend")
    assert {"precision", "machine_id", "method"} <= set(key_fields(("backend",)))
    assert key_fields(("board",)) == key_fields(("machine_id",))  # a board stands for the machine measured on
    with pytest.raises(ValueError, match="not comparison key fields: colour"):
        key_fields(("colour",))


SHAPE = {"input_shapes": {"input0": [1, 3, 256, 512]}}


@pytest.mark.parametrize("differs", [{"precision": "fp16"}, {"machine_id": "f" * 16}, {"method": "paired"},
                                     {"input_shapes": {"input0": [1, 3, 512, 1024]}}])
def test_the_speedup_column_never_divides_across_precision_machine_method_or_input_shape(differs):
    # The same model (fingerprint) at two resolutions is two keys.
    eager = synthetic_record(p50=10.0, backend="eager", **SHAPE)
    same = synthetic_record(p50=2.0, backend="tensorrt", seed=1, **SHAPE)
    other = synthetic_record(p50=1.0, backend="tensorrt", seed=2, **{**SHAPE, **differs})
    ratios = speedups([eager, same, other])
    assert ratios[id(same)] == pytest.approx(5.0, rel=0.02)
    assert id(other) not in ratios
    # compare agrees: the record that differs in a key field finds no baseline partner
    comparison = compare([eager], [same, other], ("backend",))
    assert [pair.contender for pair in comparison.pairs] == [same]
    assert [item.record for item in comparison.unpaired] == [other]


def test_the_input_shape_is_written_as_input_shape_takes_it():
    assert synthetic_record(**SHAPE).input_shape == "3x256x512"
    two = synthetic_record(input_shapes={"image": [2, 3, 8, 8], "scale": [2, 1]})
    assert two.input_shape == "image=3x8x8 scale=1"
    assert synthetic_record().input_shape == ""  # none recorded

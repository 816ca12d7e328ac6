"""--input-shape as a sweep axis: comma-separated alternatives become bindings; the ambiguous forms
are refused in one line that says what to write."""

import pytest

from edgebench.errors import UsageError
from edgebench.models import InputSpec, input_shape_bindings
from edgebench.models.input_specs import apply_input_shapes


@pytest.mark.parametrize(("texts", "bindings"), [
    ([], [()]),  # the model's own shapes
    (["3x224x224"], [("3x224x224",)]),
    (["3x256x512,3x512x1024, 3x1024x2048"], [("3x256x512",), ("3x512x1024",), ("3x1024x2048",)]),
    (["3x8x8,"], [("3x8x8",)]),  # a trailing comma, as --batch 1, takes it
    (["3x8x8,3x8x8"], [("3x8x8",)]),  # a repeat is measured once
    # The name is written once and kept on each alternative; names may hold anything but the split.
    (["image=3x8x8,3x16x16"], [("image=3x8x8",), ("image=3x16x16",)]),
    (["a b:0=3x8,3x16", "scale=1"], [("a b:0=3x8", "scale=1"), ("a b:0=3x16", "scale=1")]),
    # Inputs swept together pair up by position: an image and its mask at one resolution.
    (["image=3x8x8,3x16x16", "mask=1x8x8,1x16x16"], [("image=3x8x8", "mask=1x8x8"), ("image=3x16x16", "mask=1x16x16")]),
])
def test_alternatives_become_bindings(texts, bindings):
    assert input_shape_bindings(texts) == bindings


def test_inputs_swept_with_different_counts_are_refused():
    with pytest.raises(UsageError) as refused:
        input_shape_bindings(["image=3x8x8,3x16x16", "mask=1x8x8,1x16x16,1x32x32"])
    assert str(refused.value) == ("--input-shape alternatives pair up by position across inputs, so each input needs "
                                  "as many; got 'image=3x8x8,3x16x16' (2), 'mask=1x8x8,1x16x16,1x32x32' (3)")


@pytest.mark.parametrize("text", ["3x8x8,3xa", ",", "image=", "3x8x8;3x16x16"])
def test_a_bad_alternative_is_the_usual_shape_error(text):
    with pytest.raises(UsageError, match="bad input shape"):
        input_shape_bindings([text])


@pytest.mark.parametrize(("texts", "hint"), [
    (["3x256x512", "3x512x1024"], "--input-shape 3x256x512,3x512x1024"),
    (["input0=3x8x8", "input0=3x16x16"], "--input-shape input0=3x8x8,3x16x16"),
])
def test_repeating_the_option_for_one_input_is_refused_with_the_sweep_to_write(texts, hint):
    declared = (InputSpec("input0", ("batch", 3, 224, 224), "float32"),)
    with pytest.raises(UsageError) as refused:
        apply_input_shapes("torchvision:lraspp_mobilenet_v3_large", declared, texts, check_rank=False)
    assert str(refused.value) == ("input 'input0' of torchvision:lraspp_mobilenet_v3_large is given two shapes; "
                                  f"to measure each, give them in one value: {hint}")

"""The board side's lazily defined torch classes survive torch.save and copy.deepcopy."""

import copy
import io

import pytest
import torch

from edgebench.board.detector_parts import select_part
from edgebench.board.torch_models import build_module


def _round_trip(module):
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


@pytest.mark.parametrize("name, shape", [("squeezenet_ssd", (1, 3, 300, 300)), ("deeplabv3plus_resnet50", (1, 3, 64, 64))])
def test_a_builtin_model_saved_whole_loads_as_the_same_model(name, shape):
    model = build_module({"format": "edgebench", "name": name, "kwargs": {"num_classes": 3}}).eval()
    parts = [model, select_part(model, "network", name)] if name.endswith("ssd") else [model]
    x = torch.rand(shape)
    for part in parts:
        loaded, copied = _round_trip(part), copy.deepcopy(part)
        assert type(loaded) is type(part) and not loaded.training
        with torch.no_grad():
            want = part(x)
            torch.testing.assert_close(loaded(x), want)
            torch.testing.assert_close(copied(x), want)

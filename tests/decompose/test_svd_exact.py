"""Spatial and channel SVD at full rank compute what the convolution computes, in eager PyTorch and
through edgebench's ONNX export in ONNX Runtime; truncated, they are smaller and cheaper."""

import pytest
import torch
from torch import nn

from edgebench.decompose import channel_svd, spatial_svd
from edgebench.decompose.apply import replaced
from edgebench.models import onnx_for, resolve_model
from edgebench.models.output_check import run_onnx
from edgebench.prune.baseline import saved_model
from edgebench.prune.surgery import macs_and_params

METHODS = {"spatial": spatial_svd, "channel": channel_svd}
# (in, out, kernel, stride, padding, dilation, bias, padding_mode): every way a groups=1 conv is laid out.
CONVS = {
    "plain 3x3": (8, 16, 3, 1, 1, 1, True, "zeros"),
    "stride 2, no bias": (8, 16, 3, 2, 1, 1, False, "zeros"),
    "no padding": (6, 12, 3, 1, 0, 1, True, "zeros"),
    "dilation 2": (8, 8, 3, 1, 2, 2, True, "zeros"),
    "5x3 kernel, per-axis stride, padding, dilation": (4, 10, (5, 3), (2, 1), (2, 3), (1, 2), True, "zeros"),
    "padding same": (8, 8, 3, 1, "same", 1, True, "zeros"),
    "reflect padding": (8, 8, 3, 1, 1, 1, True, "reflect"),
    "7x7 stem": (3, 16, 7, 2, 3, 1, False, "zeros"),
}
ONE_BY_ONE = {"1x1": (16, 8, 1, 1, 0, 1, True, "zeros"), "1x1 stride 2": (16, 32, 1, 2, 0, 1, False, "zeros")}


def conv_of(layout, seed=0):
    torch.manual_seed(seed)
    in_channels, out_channels, kernel, stride, padding, dilation, bias, mode = layout
    return nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, dilation=dilation,
                     bias=bias, padding_mode=mode).eval()


def cases():
    for name, layout in CONVS.items():
        for method in METHODS:
            yield pytest.param(method, layout, id=f"{method}: {name}")
    for name, layout in ONE_BY_ONE.items():
        yield pytest.param("channel", layout, id=f"channel: {name}")


@pytest.mark.parametrize("method, layout", list(cases()))
def test_full_rank_is_exact_in_eager(method, layout):
    conv = conv_of(layout)
    low_rank = METHODS[method].factorize(conv)
    pair = low_rank.at(low_rank.full_rank)
    kh, kw = conv.kernel_size
    if method == "spatial":
        assert pair[0].kernel_size == (kh, 1) and pair[1].kernel_size == (1, kw)
        assert low_rank.full_rank == min(conv.in_channels * kh, kw * conv.out_channels)
    else:
        assert pair[0].kernel_size == (kh, kw) and pair[1].kernel_size == (1, 1)
        assert low_rank.full_rank == min(conv.out_channels, conv.in_channels * kh * kw)
    x = torch.randn(2, conv.in_channels, 17, 14)
    with torch.no_grad():
        torch.testing.assert_close(pair(x), conv(x), rtol=1e-4, atol=1e-5)


class Stem(nn.Module):
    """A conv between two other layers, so the pair is exported inside a network."""

    def __init__(self, conv):
        super().__init__()
        self.conv = conv
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.head(self.conv(x))


@pytest.mark.parametrize("method, layout", [
    pytest.param("spatial", CONVS["5x3 kernel, per-axis stride, padding, dilation"], id="spatial"),
    pytest.param("channel", CONVS["stride 2, no bias"], id="channel"),
    pytest.param("channel", ONE_BY_ONE["1x1 stride 2"], id="channel 1x1"),
])
def test_full_rank_is_exact_through_onnx_runtime(tmp_path, method, layout):
    original = Stem(conv_of(layout))
    low_rank = METHODS[method].factorize(original.conv)
    decomposed = replaced(original, {"conv": low_rank.at(low_rank.full_rank)})
    assert isinstance(decomposed.conv, nn.Sequential) and isinstance(original.conv, nn.Conv2d)
    shape = f"{original.conv.in_channels}x20x18"
    resolved = saved_model(decomposed, tmp_path / "decomposed.pt", shape, "decomposed", None)
    onnx_path = onnx_for(resolved, 1)
    x = torch.randn(1, original.conv.in_channels, 20, 18)
    (got,) = run_onnx(onnx_path, [{resolved.inputs[0].name: x.numpy()}])[0]
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), original(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_a_lower_rank_has_fewer_parameters_and_macs(method):
    conv = conv_of((32, 32, 3, 1, 1, 1, True, "zeros"))
    low_rank = METHODS[method].factorize(conv)
    x = torch.randn(1, 32, 16, 16)
    macs, params = macs_and_params(conv, x)
    low_macs, low_params = macs_and_params(low_rank.at(8), x)
    assert low_macs < macs and low_params < params
    # Truncation loses something on weights no low-rank matrix fits: a premise of the rank search.
    with torch.no_grad():
        assert not torch.allclose(low_rank.at(8)(x), conv(x), atol=1e-3)
    with pytest.raises(ValueError):
        low_rank.at(low_rank.full_rank + 1)


def test_grouped_and_one_dimensional_kernels_are_left_alone():
    depthwise = nn.Conv2d(8, 8, 3, groups=8)
    assert "groups=8" in spatial_svd.why_not(depthwise) and "groups=8" in channel_svd.why_not(depthwise)
    assert "already one-dimensional" in spatial_svd.why_not(nn.Conv2d(8, 8, (3, 1)))
    assert spatial_svd.why_not(nn.Conv2d(8, 8, 3)) is None and channel_svd.why_not(nn.Conv2d(8, 8, 1)) is None

"""Spatial SVD: a kh x kw convolution as a kh x 1 convolution to ``rank`` channels, then a 1 x kw
convolution to the original outputs (DecomposeMe's n x 1 and 1 x n filters; AIMET's spatial SVD).

The weight W[o, i, h, w] is read as the (i*kh) x (kw*o) matrix M[(i, h), (w, o)]. With M = L R
(``low_rank.split_svd``), the first convolution's weight is L as [R, i, kh, 1] and the second's is
R as [o, R, 1, kw]: summing over the R channels between them gives back W, exactly at the full rank
min(i*kh, kw*o). Stride, padding and dilation split by axis: the vertical ones go to the first
convolution, the horizontal ones to the second. The first has no bias, so the columns the second
pads are what padding the input would have given (zeros, or reflected or repeated columns alike);
the bias goes on the second.
"""

from __future__ import annotations

from torch import nn

from edgebench.decompose.low_rank import LowRank, grouped, split_svd


def why_not(conv: nn.Conv2d) -> str | None:
    """Why the spatial SVD does not apply to ``conv``, or None."""
    kh, kw = conv.kernel_size
    if kh == 1 or kw == 1:
        return f"its {kh}x{kw} kernel is already one-dimensional"
    return grouped(conv)


def factorize(conv: nn.Conv2d) -> LowRank:
    out_channels, in_channels, kh, kw = conv.weight.shape
    matrix = conv.weight.permute(1, 2, 3, 0).reshape(in_channels * kh, kw * out_channels)
    left, right = split_svd(matrix)
    rank = left.shape[1]
    first = left.T.reshape(rank, in_channels, kh, 1)
    second = right.reshape(rank, kw, out_channels).permute(2, 0, 1).unsqueeze(2)
    dtype = conv.weight.dtype
    return LowRank(
        first=first.to(dtype).contiguous(), second=second.to(dtype).contiguous(),
        bias=None if conv.bias is None else conv.bias.detach().clone(),
        first_args=_axis(conv, 0), second_args=_axis(conv, 1),
    )


def _axis(conv: nn.Conv2d, axis: int) -> dict:
    """``conv``'s arguments along one axis (0: vertical, 1: horizontal); 1 or none along the other."""
    def along(pair: tuple, other):
        return tuple(value if index == axis else other for index, value in enumerate(pair))

    padding = conv.padding if isinstance(conv.padding, str) else along(conv.padding, 0)  # "same"/"valid" per axis
    return {"kernel_size": along(conv.kernel_size, 1), "stride": along(conv.stride, 1), "padding": padding,
            "dilation": along(conv.dilation, 1), "padding_mode": conv.padding_mode}

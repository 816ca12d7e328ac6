"""Channel SVD: a convolution as the same convolution to ``rank`` channels, then a 1x1 convolution
to the original outputs (AIMET's channel SVD; a 1x1 convolution becomes a low-rank pair of 1x1s).

The weight W[o, i, h, w] is read as the o x (i*kh*kw) matrix M[o, (i, h, w)]. With M = L R
(``low_rank.split_svd``), the first convolution's weight is R as [R, i, kh, kw], with all of the
original's stride, padding and dilation, and the second's is L as [o, R, 1, 1] with the bias: the
pair gives back W, exactly at the full rank min(o, i*kh*kw).
"""

from __future__ import annotations

from torch import nn

from edgebench.decompose.low_rank import LowRank, conv_args, grouped, split_svd


def why_not(conv: nn.Conv2d) -> str | None:
    """Why the channel SVD does not apply to ``conv``, or None."""
    return grouped(conv)


def factorize(conv: nn.Conv2d) -> LowRank:
    out_channels, in_channels, kh, kw = conv.weight.shape
    left, right = split_svd(conv.weight.reshape(out_channels, in_channels * kh * kw))
    rank = left.shape[1]
    dtype = conv.weight.dtype
    return LowRank(
        first=right.reshape(rank, in_channels, kh, kw).to(dtype).contiguous(),
        second=left.reshape(out_channels, rank, 1, 1).to(dtype).contiguous(),
        bias=None if conv.bias is None else conv.bias.detach().clone(),
        first_args=conv_args(conv), second_args={"kernel_size": 1},
    )

"""A convolution's weight as the product of two factors, and the pair of convolutions a truncation
of them gives: what the spatial and channel SVD share (``spatial_svd``, ``channel_svd``).

The factors come from one SVD in float64, largest singular values first, each side scaled by the
square root of the singular values, so truncating to ``rank`` keeps the best rank-``rank``
approximation (Eckart-Young) and both convolutions' weights stay of similar size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class LowRank:
    """``first`` (R, in, ...) and ``second`` (out, R, ...) are the two convolutions' weights at
    full rank R; ``first_args`` and ``second_args`` the rest of each ``nn.Conv2d``'s arguments
    (kernel size, stride, padding, dilation, padding mode); ``bias`` goes on the second."""

    first: torch.Tensor
    second: torch.Tensor
    bias: torch.Tensor | None
    first_args: dict[str, Any]
    second_args: dict[str, Any]

    @property
    def full_rank(self) -> int:
        return self.first.shape[0]

    def at(self, rank: int) -> nn.Sequential:
        """The pair truncated to ``rank`` channels between them, in eval mode; at full rank it
        computes what the convolution does, to float rounding."""
        if not 1 <= rank <= self.full_rank:
            raise ValueError(f"rank must be in [1, {self.full_rank}], not {rank}")
        first = nn.Conv2d(self.first.shape[1], rank, bias=False, **self.first_args)
        second = nn.Conv2d(rank, self.second.shape[0], bias=self.bias is not None, **self.second_args)
        with torch.no_grad():
            first.weight.copy_(self.first[:rank])
            second.weight.copy_(self.second[:, :rank])
            if self.bias is not None:
                second.bias.copy_(self.bias)
        like = self.first
        return nn.Sequential(first, second).to(device=like.device, dtype=like.dtype).eval()


def split_svd(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(left, right)`` with ``left @ right == matrix``: U sqrt(S) of shape (rows, R) and sqrt(S) V^T
    of shape (R, columns), R = min(rows, columns), computed in float64."""
    u, s, vh = torch.linalg.svd(matrix.detach().double(), full_matrices=False)
    root = s.sqrt()
    return u * root, root[:, None] * vh


def conv_args(conv: nn.Conv2d) -> dict[str, Any]:
    """The arguments of ``conv`` besides its channels, groups and bias."""
    return {"kernel_size": conv.kernel_size, "stride": conv.stride, "padding": conv.padding,
            "dilation": conv.dilation, "padding_mode": conv.padding_mode}


def grouped(conv: nn.Conv2d) -> str | None:
    """Why a grouped convolution is left alone: its weight is one matrix per group, not one."""
    return f"grouped (groups={conv.groups})" if conv.groups != 1 else None

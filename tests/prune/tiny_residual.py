"""Small residual networks for `--residual zero-pad` tests, as `--model tiny_residual:tiny_resnet`
names them: built from torchvision's and torch's classes only, so their pickles load anywhere."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock


def tiny_resnet(num_classes: int = 10) -> nn.Sequential:
    """A stem, an identity BasicBlock and a downsampling one (1x1 projection on the skip), a classifier."""
    torch.manual_seed(0)
    downsample = nn.Sequential(nn.Conv2d(16, 32, 1, stride=2, bias=False), nn.BatchNorm2d(32))
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
        BasicBlock(16, 16), BasicBlock(16, 32, stride=2, downsample=downsample),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes),
    ).eval()


class ResidualOutput(nn.Module):
    """A residual addition that is the model's output: its branch convolution is an output layer,
    which keeps its channels."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        return y + self.bn(self.conv(y))

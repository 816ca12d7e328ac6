"""Small torch models for the ``package.module:callable`` spec form and for .pt/.pt2 files."""

import torch
from torch import nn


class TinyConvNet(nn.Module):
    """Conv, batch norm (buffers), dropout (eval-sensitive), pooling and a linear head."""

    def __init__(self, channels=4, num_classes=3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(), nn.Dropout(0.5),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


class TokenNet(nn.Module):
    """Token ids (int64) and a padding mask (bool), as language models take them."""

    def __init__(self, vocab=16, width=8):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.proj = nn.Linear(width, 2)

    def forward(self, ids, mask):
        hidden = self.embed(ids) * mask.unsqueeze(-1).to(torch.float32)
        return self.proj(hidden.sum(dim=1))


class ScaledBy(nn.Module):
    """Takes a plain int besides its tensor: not something edgebench can feed."""

    def forward(self, x, factor: int):
        return x * factor


def tiny_convnet(channels=4, num_classes=3):
    return TinyConvNet(channels, num_classes)


def token_net():
    return TokenNet()


def not_a_module():
    return 42


def needs_no_arguments():
    return TinyConvNet()


def broken_factory():
    raise RuntimeError("factory exploded\nsecond line")

"""Models for worker and sweep tests, built by the worker through the ``callable`` recipe.

Misbehaving models reproduce the ways real backends fail: native aborts, segfaults, the
out-of-memory killer's SIGKILL, hangs, and libraries that print to stdout.
"""

import ctypes
import os
import signal
import sys
import time

import torch
from torch import nn


class TinyConvNet(nn.Module):
    def __init__(self, channels=8, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


class _Misbehaving(TinyConvNet):
    def __init__(self, action):
        super().__init__()
        self.action = action
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 1:  # after the first (cold) inference, inside the timed loop
            self.action()
        return super().forward(x)


def tiny(channels=8):
    return TinyConvNet(channels)


def pruned():
    from torch.nn.utils import prune

    model = TinyConvNet()
    prune.ln_structured(model.features[0], "weight", amount=0.5, n=1, dim=0)
    model.head.register_forward_hook(lambda module, args, output: output)
    return model


def aborting():
    return _Misbehaving(os.abort)


def oom_killed():
    return _Misbehaving(lambda: os.kill(os.getpid(), signal.SIGKILL))


def segfaulting():
    return _Misbehaving(lambda: ctypes.string_at(0))


def hanging():
    return _Misbehaving(lambda: time.sleep(3600))


def chatty():
    def shout():
        print("backend noise on stdout")
        sys.stdout.flush()
        os.write(1, b"native noise on fd 1\n")

    return _Misbehaving(shout)


def not_a_module():
    return "not a module"

"""A residual branch's last layer, pruned alone and scattered back to the width of the addition.

``edgebench prune --residual zero-pad`` (``edgebench.prune.zero_pad``) keeps some output channels
of a residual branch's last convolution (and its BatchNorm) and wraps the branch's last layer in
``ZeroPadded``: its output goes into a tensor of zeros of the original width at the kept channels,
so the addition sees the shape it always did, and the removed channels cost nothing before it.

It lives on the board side because a pruned model is a pickle the worker loads: the class must be
importable where only ``edgebench/board/`` is installed. Board-side: torch imported lazily, the
class pickled by its factory (``edgebench.board.lazy_classes``).
"""

from __future__ import annotations

import functools

from edgebench.board.lazy_classes import by_factory


def zero_padded(inner, kept, width):
    """``inner`` (a layer with ``len(kept)`` output channels) whose output lands at channels
    ``kept`` of a zero tensor ``width`` channels wide."""
    return _zero_padded_class()(inner, kept, width)


@functools.lru_cache(maxsize=None)
def _zero_padded_class():
    import torch

    class ZeroPadded(torch.nn.Module):
        """``inner``'s output scattered into zeros of ``width`` channels (dimension 1) at ``kept``.

        One zero channel is padded after the kept ones and every original channel gathers its
        own or that zero: a Pad and a Gather in ONNX. On a small case this ran faster, eager and in
        ONNX Runtime, than ``index_copy`` into zeros (a ScatterND between transposes) or a
        concatenation with all the zero channels."""

        __reduce__ = by_factory(__name__, "_zero_padded_class")  # torch.save finds the class by its factory

        def __init__(self, inner, kept, width):
            super().__init__()
            self.inner = inner
            self.kept = len(kept)
            self.width = int(width)
            position = dict((channel, index) for index, channel in enumerate(kept))
            # A buffer, so it moves with .to() and the state dict holds it.
            self.register_buffer("order", torch.tensor([position.get(channel, len(kept))
                                                        for channel in range(self.width)], dtype=torch.long))

        def forward(self, x):
            y = self.inner(x)
            return torch.nn.functional.pad(y, (0, 0, 0, 0, 0, 1)).index_select(1, self.order)

        def extra_repr(self):
            return "kept=%d of %d channels" % (self.kept, self.width)

    return ZeroPadded

"""Synthetic input tensors for latency measurement. Board-side: Python 3.8, numpy only."""

from __future__ import annotations

import numpy as np

INPUT_SEED = 0


def make_inputs(specs):
    """Arrays for input specs ``[{"name", "shape", "dtype"}]``, the same on every call.

    Floating inputs are standard normal; integer and boolean inputs are zeros, which are valid
    indices for embeddings and gathers of any size.
    """
    rng = np.random.default_rng(INPUT_SEED)
    arrays = {}
    for spec in specs:
        dtype = np.dtype(spec["dtype"])
        shape = tuple(int(d) for d in spec["shape"])
        if np.issubdtype(dtype, np.floating):
            arrays[spec["name"]] = rng.standard_normal(shape).astype(dtype)
        else:
            arrays[spec["name"]] = np.zeros(shape, dtype=dtype)
    return arrays

"""ONNX Runtime's outputs against eager PyTorch's, element by element: one check for every export
(``artifacts.onnx_for``) and for the pruner's ``model.onnx``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


def run_onnx(path: Path, feeds: Sequence[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
    """Every output of ``path`` on CPU for each of ``feeds``, in the graph's order; one session."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [session.run(None, feed) for feed in feeds]


def compare_outputs(onnx_outputs: list[np.ndarray], eager_output: Any, rtol: float,
                    atol: float) -> tuple[str | None, float | None, float | None]:
    """What is wrong, if anything, and the largest absolute and relative differences (None when
    the outputs cannot be compared at all).

    ``atol`` is relative to each output's largest magnitude (at least 1): float32 rounding near
    zero is as large as the sums that cancelled there, and those grow with the output's scale (a
    trained detector's box regressions sit well above 1), so a fixed atol fails honest exports."""
    expected = output_arrays(eager_output)
    if expected is None:
        return f"the model returns a {type(eager_output).__name__}, not tensors", None, None
    if len(onnx_outputs) != len(expected):
        return f"ONNX Runtime gives {len(onnx_outputs)} outputs, eager {len(expected)}", None, None
    max_abs = max_rel = 0.0
    problem = None
    for index, (got, want) in enumerate(zip(onnx_outputs, expected)):
        got = np.asarray(got, dtype=np.float64)
        if got.shape != want.shape:
            shapes = f"{list(got.shape)} in ONNX Runtime, {list(want.shape)} in eager"
            return f"output {index} has shape {shapes}", None, None
        diff = np.abs(got - want)
        scale = max(1.0, float(np.nanmax(np.abs(want)))) if want.size else 1.0
        if diff.size:
            max_abs = max(max_abs, float(diff.max()))
            away_from_zero = np.abs(want) > atol * scale
            if away_from_zero.any():
                max_rel = max(max_rel, float((diff[away_from_zero] / np.abs(want[away_from_zero])).max()))
        if problem is None and not np.allclose(got, want, rtol=rtol, atol=atol * scale, equal_nan=True):
            problem = (f"output {index} differs from eager beyond rtol={rtol:g}, atol={atol:g} x its largest "
                       f"magnitude {scale:.3g} (max abs diff {float(diff.max()):.3g})")
    return problem, max_abs, max_rel


def output_arrays(output: Any) -> list[np.ndarray] | None:
    """A model's outputs as float64 arrays, in the order the ONNX graph lists them (a tensor, or
    tuples, lists and dicts of them, flattened depth first as the exporters do); None for anything
    else."""
    import torch

    if isinstance(output, torch.Tensor):
        return [output.detach().cpu().numpy().astype(np.float64)]
    items = output.values() if isinstance(output, dict) else output if isinstance(output, (tuple, list)) else None
    if items is None:
        return None
    arrays = [output_arrays(item) for item in items]
    return None if any(part is None for part in arrays) else [array for part in arrays for array in part]

"""What a model variant is on paper, for the table of pruned variants beside what it measured.

The figures are of the part the worker measures (a detector's network unless the spec said
``#end_to_end``; ``edgebench.board.detector_parts``), whole otherwise: multiply-accumulates and parameters, the
size of its saved weights (``torch.save`` of the state dict) and of its ONNX export when one was
made.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from edgebench.board.detector_parts import select_part
from edgebench.prune.surgery import macs_and_params


def model_stats(module: nn.Module, example_input: torch.Tensor, part: Optional[str] = None,
                onnx_path: Optional[Path] = None) -> dict[str, Any]:
    """MACs, parameters and weights size of ``part`` of ``module`` (the part the worker measures,
    ``prune.baseline.measured_part``; None: the whole module); ONNX size when given."""
    measured = select_part(module, part, type(module).__name__) if part else module
    macs, params = macs_and_params(measured, example_input)
    buffer = io.BytesIO()
    torch.save(measured.state_dict(), buffer)
    stats: dict[str, Any] = {"macs": macs, "params": params, "state_dict_bytes": buffer.tell()}
    if onnx_path is not None:
        stats["onnx_bytes"] = Path(onnx_path).stat().st_size
    return stats

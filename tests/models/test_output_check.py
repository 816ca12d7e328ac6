"""The export check's tolerance follows each output's scale, and still catches a wrong export."""

import numpy as np
import torch

from edgebench.models.output_check import compare_outputs


def test_rounding_near_zero_passes_at_a_large_scale_and_fails_at_a_small_one():
    want = torch.tensor([[20.0, 0.0, -15.0]])
    rounded = [np.array([[20.0, 5e-4, -15.0]])]  # float32 cancellation at the scale of 20
    problem, max_abs, _ = compare_outputs(rounded, want, rtol=1e-3, atol=1e-4)
    assert problem is None and max_abs == 5e-4
    small = torch.tensor([[0.5, 0.0, -0.2]])
    problem, _, _ = compare_outputs([np.array([[0.5, 5e-4, -0.2]])], small, rtol=1e-3, atol=1e-4)
    assert problem is not None and "largest magnitude 1" in problem


def test_a_wrong_output_fails_whatever_its_scale():
    want = {"boxes": torch.tensor([[20.0, 10.0]]), "scores": torch.tensor([0.9])}
    problem, _, _ = compare_outputs([np.array([[20.0, 10.5]]), np.array([0.9])], want, rtol=1e-3, atol=1e-4)
    assert problem.startswith("output 0 differs from eager beyond rtol=0.001, atol=0.0001 x its largest magnitude 20")

"""A model the worker cannot load is one line before anything is measured, not a traceback."""

import pytest
import torch

from edgebench.errors import UsageError
from edgebench.prune.baseline import saved_model


def _model_with_a_local_class():
    class Local(torch.nn.Module):  # pickle cannot find a class defined in a function
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(x)

    return Local()


def test_an_unpicklable_model_is_a_usage_error_naming_the_fix(tmp_path):
    path = tmp_path / "baseline.pt"
    with pytest.raises(UsageError, match=r"^cannot save mine for the worker: .*Local.* define its classes at "
                                         r"module level"):
        saved_model(_model_with_a_local_class(), path, "3x8x8", "mine", None)
    assert not path.exists()


def test_a_picklable_model_is_saved_and_resolved_under_its_name(tmp_path):
    resolved = saved_model(torch.nn.Conv2d(3, 4, 3), tmp_path / "ok.pt", "3x8x8", "mine", None)
    assert resolved.name == "mine" and (tmp_path / "ok.pt").is_file()

"""Fingerprints of torch-built models: deterministic across processes, sensitive to content."""

import subprocess
import sys

import pytest
import torch

from edgebench.board.torch_models import build_module
from edgebench.models import resolve_model
from edgebench.models.fingerprint import module_fingerprint

FINGERPRINT_SCRIPT = "from edgebench.models import resolve_model; print(resolve_model({spec!r}).fingerprint)"


def fingerprints_in_fresh_processes(spec, count, cwd):
    """Each process builds the model from scratch with its own import of torch."""
    script = FINGERPRINT_SCRIPT.format(spec=spec)
    processes = [
        subprocess.Popen([sys.executable, "-c", script], cwd=cwd, stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert all(process.returncode == 0 for process in processes)
    return [output.strip() for output in outputs]


def test_torchvision_fingerprint_is_the_same_in_every_process(tmp_path):
    spec = "torchvision:mobilenet_v3_small"
    here = resolve_model(spec).fingerprint
    assert fingerprints_in_fresh_processes(spec, 2, tmp_path) == [here, here]


def test_torchvision_kwargs_change_the_fingerprint():
    default = resolve_model("torchvision:mobilenet_v3_small").fingerprint
    ten_classes = resolve_model("torchvision:mobilenet_v3_small?num_classes=10").fingerprint
    assert ten_classes != default
    assert resolve_model("torchvision:mobilenet_v3_small?num_classes=10").fingerprint == ten_classes


def test_callable_fingerprint_follows_its_kwargs(in_tests_dir):
    def fingerprint(spec):
        return resolve_model(spec, ["3x8x8"]).fingerprint

    assert fingerprint("spec_models:tiny_convnet") == fingerprint("spec_models:tiny_convnet?channels=4")
    assert fingerprint("spec_models:tiny_convnet") != fingerprint("spec_models:tiny_convnet?num_classes=5")


def test_the_same_architecture_from_another_factory_is_the_same_model(in_tests_dir):
    # What is computed matters, not what the factory is called.
    assert (
        resolve_model("spec_models:tiny_convnet", ["3x8x8"]).fingerprint
        == resolve_model("spec_models:needs_no_arguments", ["3x8x8"]).fingerprint
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda module: module.head.bias.data.add_(1.0),  # a parameter's bytes
        lambda module: module.features[1].running_mean.add_(1.0),  # a buffer's bytes
        lambda module: setattr(module.features[3], "p", 0.1),  # architecture only: repr
    ],
)
def test_module_fingerprint_covers_weights_buffers_and_architecture(in_tests_dir, change):
    recipe = {"format": "callable", "target": "spec_models:tiny_convnet", "sys_path": [str(in_tests_dir)]}
    module = build_module(recipe)
    before = module_fingerprint(module)
    assert module_fingerprint(build_module(recipe)) == before
    with torch.no_grad():
        change(module)
    assert module_fingerprint(module) != before


def test_module_fingerprint_covers_dtypes_numpy_lacks():
    module = torch.nn.Linear(2, 2)
    as_float = module_fingerprint(module)
    assert module_fingerprint(module.to(torch.bfloat16)) != as_float

"""Build a PyTorch module from a plain-data recipe.

Used by the workstation (to fingerprint and export a model) and by the worker (to measure it),
so both construct exactly the same module. Board-side: Python 3.8, standard library plus torch.

A recipe is a dict with a ``format`` key:

- ``{"format": "torchvision", "name": "resnet18", "kwargs": {...}}``: random weights.
- ``{"format": "edgebench", "name": "ssd300_resnet50", "kwargs": {...}}``: a built-in model
  (``edgebench.board.builtin_models``), random weights.

Either may carry ``"part": "network"`` or ``"end_to_end"`` for a detector (``detector_parts``).
- ``{"format": "callable", "target": "pkg.mod:fn", "kwargs": {...}, "sys_path": [...]}``.
- ``{"format": "torch-file", "path": "model.pt"}``: a pickled full module or TorchScript archive.
- ``{"format": "torch-export", "path": "model.pt2"}``: a ``torch.export`` program.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import zipfile

from edgebench.board.builtin_models import BUILTIN_MODELS
from edgebench.board.detector_parts import PartError, select_part
from edgebench.board.runners.base import first_line

# Random weights are seeded so the workstation's fingerprint describes the worker's module.
WEIGHT_SEED = 0


class ModelBuildError(Exception):
    """The recipe does not produce a usable module."""


def build_module(recipe):
    """Return an ``nn.Module`` for ``recipe``, in eval mode unless a ``torch.export`` program."""
    import torch

    fmt = recipe.get("format")
    builders = {
        "torchvision": _torchvision,
        "edgebench": _builtin,
        "callable": _callable,
        "torch-file": _torch_file,
        "torch-export": _torch_export,
    }
    if fmt not in builders:
        raise ModelBuildError("unknown model recipe format: %r" % (fmt,))
    torch.manual_seed(WEIGHT_SEED)
    module = builders[fmt](recipe)
    if not isinstance(module, torch.nn.Module):
        raise ModelBuildError(
            "%s did not produce a torch.nn.Module (got %s)" % (describe(recipe), type(module).__name__)
        )
    try:
        module = select_part(module, recipe.get("part"), describe(recipe))
    except PartError as exc:
        raise ModelBuildError(str(exc))
    if fmt == "torch-export":
        # The program's train/eval behaviour was fixed when it was exported, and recent torch
        # (2.14 at least) makes its module() refuse eval() with NotImplementedError.
        return module
    return module.eval()


def describe(recipe):
    """A short human name for a recipe, for messages."""
    fmt = recipe.get("format")
    if fmt in ("torchvision", "edgebench"):
        return fmt + ":" + recipe["name"]
    if fmt == "callable":
        return recipe["target"]
    return recipe.get("path", repr(recipe))


def _torchvision(recipe):
    import torchvision

    name = recipe["name"]
    if name not in torchvision.models.list_models():
        raise ModelBuildError("torchvision has no model named %r" % name)
    kwargs = dict(recipe.get("kwargs", {}))
    # Measurements use seeded random weights, and a build never downloads anything.
    pretrained = [key for key in ("weights", "weights_backbone") if kwargs.get(key) is not None]
    if pretrained:
        raise ModelBuildError("torchvision:%s is built with random weights; %s would download weights"
                              % (name, " and ".join("%s=%s" % (key, kwargs[key]) for key in pretrained)))
    kwargs["weights"] = None
    # Detection and segmentation builders default to downloading a pretrained backbone.
    builder = torchvision.models.get_model_builder(name)
    if "weights_backbone" in inspect.signature(builder).parameters:
        kwargs["weights_backbone"] = None
    return torchvision.models.get_model(name, **kwargs)


def _builtin(recipe):
    name = recipe["name"]
    if name not in BUILTIN_MODELS:
        raise ModelBuildError(BUILTIN_MODELS.unknown(name))
    return BUILTIN_MODELS.load(name)(**recipe.get("kwargs", {}))


def _callable(recipe):
    for path in reversed(recipe.get("sys_path", [])):
        if path not in sys.path:
            sys.path.insert(0, path)
    module_name, _, attr = recipe["target"].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelBuildError("cannot import %s: %s" % (module_name, exc))
    factory = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            raise ModelBuildError("%s has no attribute %r" % (module_name, attr))
        factory = getattr(factory, part)
    return factory(**recipe.get("kwargs", {})) if callable(factory) else factory


def _torch_file(recipe):
    import torch

    path = recipe["path"]
    try:
        if _is_torchscript(path):
            return torch.jit.load(path, map_location="cpu")
        # A full pickled module needs full unpickling; the user vouches for their own file.
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelBuildError("cannot load %s: %s" % (path, first_line(exc)))


def _torch_export(recipe):
    import torch

    path = recipe["path"]
    try:
        program = torch.export.load(path)
    except Exception as exc:
        raise ModelBuildError("cannot load %s: %s" % (path, first_line(exc)))
    return program.module()


def _is_torchscript(path):
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/")[1:2] == ["code"] for name in archive.namelist())


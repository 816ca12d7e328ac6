"""The runner registry: explicit names for the built-in backends, entry points for others.

Third-party runners register under the ``edgebench.board.runners`` entry-point group with a
``module:Class`` value. Board-side: Python 3.8, standard library only.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

ENTRY_POINT_GROUP = "edgebench.board.runners"

BUILTIN_RUNNERS = {
    "eager": "edgebench.board.runners.eager:EagerRunner",
    "onnxruntime": "edgebench.board.runners.onnxruntime:OnnxRuntimeRunner",
    "tensorrt": "edgebench.board.runners.tensorrt:TensorRTRunner",
}


def runner_names():
    """Every runner name known here, built-in first."""
    return list(BUILTIN_RUNNERS) + sorted(set(_entry_points()) - set(BUILTIN_RUNNERS))


def runner_class(name):
    """The runner class registered as ``name``; KeyError if there is none."""
    target = BUILTIN_RUNNERS.get(name) or _entry_points().get(name)
    if target is None:
        raise KeyError(name)
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def is_installed(name):
    """Whether the backend library that runner ``name`` needs can be imported here."""
    return importlib.util.find_spec(runner_class(name).requires) is not None


def _entry_points():
    from importlib import metadata

    if sys.version_info >= (3, 10):
        found = metadata.entry_points(group=ENTRY_POINT_GROUP)
    else:  # Python 3.8 and 3.9 (JetPack 5) return a dict of groups
        found = metadata.entry_points().get(ENTRY_POINT_GROUP, [])
    return {entry.name: entry.value for entry in found}

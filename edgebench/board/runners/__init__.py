"""The runner registry: explicit names for the built-in backends, entry points for others.

Third-party runners register under the ``edgebench.runners`` entry-point group (the name users register under, kept from before the board package) with a
``module:Class`` value (``edgebench.board.registry``). Board-side: Python 3.8, standard library only.
"""

from __future__ import annotations

import importlib.util

from edgebench.board.registry import Registry

RUNNERS = Registry("runner", "edgebench.runners")
RUNNERS.add("eager", "edgebench.board.runners.eager:EagerRunner")
RUNNERS.add("onnxruntime", "edgebench.board.runners.onnxruntime:OnnxRuntimeRunner")
RUNNERS.add("tensorrt", "edgebench.board.runners.tensorrt:TensorRTRunner")


def runner_names():
    """Every runner name known here, built-in first."""
    return RUNNERS.names()


def runner_class(name):
    """The runner class registered as ``name``; KeyError if there is none."""
    return RUNNERS.load(name)


def is_installed(name):
    """Whether the backend library that runner ``name`` needs can be imported here."""
    return importlib.util.find_spec(runner_class(name).requires) is not None

"""Pickling for the torch classes the board side defines lazily.

A ``torch.nn.Module`` subclass written inside a function (so that torch is imported only when a
model is built, ``docs/architecture.md``) has no importable name, and pickle, hence
``torch.save``, cannot find it. Such a class sets ``__reduce__ = by_factory(__name__, "factory")``:
its instances are pickled as the name of the cached function that returns the class, plus their
state, and rebuilt by calling it. Board-side: standard library only.
"""

from __future__ import annotations

import importlib


def by_factory(module, factory):
    """A ``__reduce__`` for instances of the class ``module.factory()`` returns."""
    def __reduce__(self):
        return restore, (module, factory, self.__getstate__())
    return __reduce__


def restore(module, factory, state):
    """An instance of ``module.factory()``'s class with ``state``, as pickled by ``by_factory``."""
    cls = getattr(importlib.import_module(module), factory)()
    instance = cls.__new__(cls)
    instance.__setstate__(state)
    return instance

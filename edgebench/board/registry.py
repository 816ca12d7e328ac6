"""One registry per kind of plugin: built-ins by explicit name, third-party ones by entry point.

Built-ins are registered in code, either as the object itself or as a ``module:attribute``
string imported on first use (so a registry of heavy backends stays import-light). Third-party
plugins declare an entry point in their package metadata, for example in ``pyproject.toml``::

    [project.entry-points."edgebench.importance"]
    fisher = "my_package.criteria:FisherImportance"

A built-in name always wins over an entry point of the same name. Nothing is found by naming
convention. Used by the runners (board side) and by the pruner's criteria and tasks, hence here:
Python 3.8, standard library only.
"""

from __future__ import annotations

import sys
from importlib import metadata


class Registry:
    def __init__(self, kind, group):
        #: What the plugins are, for messages: "runner", "task", ...
        self.kind = kind
        #: The entry-point group third-party packages register under.
        self.group = group
        self._builtins = {}

    def add(self, name, target):
        """Register the built-in ``name``: an object, or a ``module:attribute`` string."""
        self._builtins[name] = target

    def register(self, name):
        """Decorator form of ``add``: ``@registry.register("l1")`` above a class or function."""
        def add(target):
            self.add(name, target)
            return target
        return add

    def names(self):
        """Every name known here: built-ins in registration order, then entry points sorted."""
        return list(self._builtins) + sorted(set(entry_points(self.group)) - set(self._builtins))

    def __contains__(self, name):
        return name in self._builtins or name in entry_points(self.group)

    def load(self, name):
        """The object registered as ``name``; KeyError if there is none. An entry point that cannot
        be imported raises what the import raised (ImportError, AttributeError, ...)."""
        target = self._builtins.get(name)
        if target is None:
            target = entry_points(self.group).get(name)
            if target is None:
                raise KeyError(name)
        return load_target(target, name, self.group) if isinstance(target, str) else target

    def unknown(self, name):
        """The one-line message for a name nobody registered, listing the known ones."""
        return "unknown %s %r; choose one of %s" % (self.kind, name, ", ".join(self.names()))


class NameList:
    """A registry's names read afresh on every use: installing a plugin needs no restart of the
    code holding the list. Behaves as a read-only sequence of str."""

    def __init__(self, registry):
        self._registry = registry

    def __iter__(self):
        return iter(self._registry.names())

    def __len__(self):
        return len(self._registry.names())

    def __getitem__(self, index):
        return self._registry.names()[index]

    def __contains__(self, name):
        return name in self._registry

    def __repr__(self):
        return repr(tuple(self))


def entry_points(group):
    """``{name: "module:attribute"}`` of the entry points installed under ``group``."""
    if sys.version_info >= (3, 10):
        found = metadata.entry_points(group=group)
    else:  # Python 3.8 and 3.9 (JetPack 5) return a dict of groups
        found = metadata.entry_points().get(group, [])
    return {entry.name: entry.value for entry in found}


def load_target(target, name="", group=""):
    """Import ``module:attribute`` (``attribute`` may be dotted) and return the attribute."""
    return metadata.EntryPoint(name, target, group).load()

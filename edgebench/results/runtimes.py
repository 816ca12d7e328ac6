"""The runtime a record was measured with, and which interpreter measures each side of a paired
confirmation when the runtime changed between its records (``results.confirm``).

A record's runtime is the backend library and version its worker loaded (``env.backend``: the
ONNX Runtime, torch or TensorRT build). One process holds one of each, so sides measured with
different runtimes need a worker each (``sweep.turns``), on an interpreter that has that runtime.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Optional

from edgebench.results.record import Record
from edgebench.sweep.paired import PairedMeasurement


def runtime_of(record: Record) -> Optional[str]:
    """``"onnxruntime 1.17.1"``; None when the record does not say (a failed measurement)."""
    backend = record.env.get("backend") or {}
    if not (backend.get("library") and backend.get("version")):
        return None
    return f"{backend['library']} {backend['version']}"


def interpreters(records: Sequence[Record], reference_python: Optional[str]) -> Optional[list[str]]:
    """One interpreter per side (``records``: reference, contender, golden), or None for one
    process holding them all: when every side ran the contender's runtime, or when no
    ``reference_python`` is named (two workers on this interpreter would restore nothing). Sides
    of the contender's runtime run on this interpreter, the others on ``reference_python``."""
    tonight = runtime_of(records[1])
    if reference_python is None or all(runtime_of(record) == tonight for record in records):
        return None
    return [sys.executable if runtime_of(record) == tonight else reference_python for record in records]


def unrestored(roles: Sequence[str], records: Sequence[Record], paired: PairedMeasurement,
               reference_python: Optional[str]) -> list[str]:
    """A note for each side measured now with another runtime than its record's: the ratio then
    answers "is the model slower", not "is the runtime slower"."""
    notes = []
    for role, record, entry in zip(roles, records, paired.entries):
        wanted, ran = runtime_of(record), runtime_of(entry.record)
        if entry.ok and wanted and ran and wanted != ran:
            remedy = (f"{reference_python} has {ran}" if reference_python else
                      "name a Python that has it with --reference-python")
            notes.append(f"the {role}'s runtime could not be restored: its record ran {wanted}, measured again "
                         f"with {ran} ({remedy})")
    return notes

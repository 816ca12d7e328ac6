"""Record JSON versions: every record carries ``schema_version``; an older one is upgraded on
reading, one step per version, and one from a newer edgebench is refused in one line.

A step ``update_to_N(fields, stored_env)`` turns the fields of a version N - 1 record into
version N. ``stored_env`` is what else the store knows of the record's machine (its run's
environment and host), for fields older records never carried. To change the record's
fields: write the step, append it to ``STEPS``, bump ``RECORD_SCHEMA_VERSION`` (and the
store's schema with a revision, see ``migrations``, whose upgrade rewrites the stored records
with these steps).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Optional

from edgebench.board.machine import machine_identity
from edgebench.errors import UsageError

RECORD_SCHEMA_VERSION = 3

RecordStep = Callable[[dict, Mapping[str, Any]], dict]


def machine_id_of(env: Mapping[str, Any]) -> Optional[str]:
    """The machine id the worker reported in ``env``, else computed from what ``env`` says of the
    machine; None when it says nothing (no host, no CPU model)."""
    if env.get("machine_id"):
        return str(env["machine_id"])
    if env.get("host") is None and env.get("cpu_model") is None:
        return None
    return machine_identity(dict(env))


def update_to_2(fields: dict, stored_env: Mapping[str, Any]) -> dict:
    """Version 2 says how a record was measured (``method``; a paired record was known only by
    ``env.pairing``) and on which machine (``machine_id``)."""
    env = fields.get("env") or {}
    return {**fields, "method": "paired" if "pairing" in env else "sweep",
            "machine_id": machine_id_of({**stored_env, **env})}


def update_to_3(fields: dict, stored_env: Mapping[str, Any]) -> dict:
    """Version 3 names the model as the run was given it (``model_spec``) and lists the files it
    kept (``artifacts``); older records knew neither."""
    return {**fields, "model_spec": None, "artifacts": []}


# (from_version, step): each step turns a record of from_version into from_version + 1.
STEPS: list[tuple[int, RecordStep]] = [
    (1, update_to_2),
    (2, update_to_3),
]


def upgrade_record(fields: dict, *, source: str = "a record", stored_env: Mapping[str, Any] | None = None) -> dict:
    """``fields`` of any version up to ours as a record of ``RECORD_SCHEMA_VERSION``; ``source``
    names the file in the error when the record is from a newer edgebench."""
    version = fields.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise UsageError(f"{source} has no valid schema_version ({version!r})")
    refuse_newer(source, version, RECORD_SCHEMA_VERSION)
    steps = dict(STEPS)
    while version < RECORD_SCHEMA_VERSION:
        fields = steps[version](fields, stored_env or {})
        version += 1
    return {**fields, "schema_version": RECORD_SCHEMA_VERSION}


def refuse_newer(source: str, version: int, supported: int) -> None:
    """One line that says what to do, in place of a validation error on unknown fields."""
    if version > supported:
        raise UsageError(f"{source} was written by a newer edgebench (schema {version}, this one reads up to "
                         f"{supported}); upgrade edgebench")

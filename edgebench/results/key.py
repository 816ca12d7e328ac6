"""The comparison key: what two records must share for their latencies to be compared.

Defined once here and used by ``compare``, ``regress``, the report and the run table's
speedup column. A comparison varies some of these fields on purpose (``compare --baseline
eager --contender onnxruntime`` varies the backend) and holds the rest equal.

- ``machine_id``: two hosts that share a target name (``x86-cpu``) are two machines;
- ``precision``: an fp16 engine against an fp32 one is a different experiment, not a speedup;
- ``method``: a paired measurement (models alternating in short blocks in one process) and a
  sweep measurement of the same model are not samples of the same thing;
- ``input_shape`` (``Record.input_shape``: the recorded input shapes less the batch dim): the
  fingerprint covers the model's weights, not the resolution it was fed, so two resolutions of
  one model share it.

``HISTORY_FIELDS`` is the key a model's history is followed by across runs (``regress``): the
model by its name (``Record.model_identity``: the spec or path the run was given), as asv follows
a benchmark by its name across commits, so a nightly whose file now holds another model is
judged against the nights before, and the changed fingerprint is listed among what changed. A
record without a spec (before record version 3; a model a prune or bake made) keeps its name and
fingerprint. ``compare`` pairs records by ``KEY_FIELDS``: two models compared side by side are
the same model only if their content is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

KEY_FIELDS = ("model", "model_fingerprint", "machine_id", "target", "mode", "backend", "device", "precision",
              "batch", "input_shape", "method")
HISTORY_FIELDS = ("model_identity", *(name for name in KEY_FIELDS if name not in ("model", "model_fingerprint")))
MACHINE_ID_SHOWN = 8  # hex digits of a machine id in tables: enough to tell a lab's machines apart


# Names a comparison may vary that stand for a key field: a board (``Record.board``) is a name for
# the machine measured on, so comparing two boards varies the machine.
STANDS_FOR = {"board": "machine_id"}


def key_fields(varied: Sequence[str] = ()) -> tuple[str, ...]:
    """The key's fields less those a comparison varies."""
    named = {STANDS_FOR.get(name, name) for name in varied}
    unknown = named - set(KEY_FIELDS)
    if unknown:
        raise ValueError(f"not comparison key fields: {', '.join(sorted(unknown))}")
    return tuple(name for name in KEY_FIELDS if name not in named)


def key_of(record: object, fields: Sequence[str] = KEY_FIELDS) -> tuple:
    return tuple(getattr(record, name) for name in fields)


def input_shape_text(input_shapes: Mapping[str, Sequence[int]]) -> str:
    """Input shapes after the batch dim, as ``--input-shape`` writes them: ``3x512x1024``; several
    inputs as ``NAME=SHAPE`` joined by spaces; "" when none were recorded."""
    texts = {name: "x".join(str(dim) for dim in shape[1:]) for name, shape in input_shapes.items()}
    if len(texts) == 1:
        return next(iter(texts.values()))
    return " ".join(f"{name}={text}" for name, text in texts.items())


def short_machine_id(machine_id: str | None) -> str:
    return "-" if machine_id is None else machine_id[:MACHINE_ID_SHOWN]

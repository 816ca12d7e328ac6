"""Model input specs and the ``--input-shape`` option that overrides them.

Each ``--input-shape`` value is one input's shape; a comma separates alternative shapes of that
input, each measured as a model binding of its own (a sweep axis, like ``--batch``):
``3x256x512,3x512x1024`` is two bindings of a one-input model, ``--input-shape a=3x8 --input-shape
b=4`` one binding of a two-input model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from edgebench.errors import UsageError

# The leading dim of shapes we make up ourselves (torch models, --input-shape): dynamic.
BATCH_DIM = "batch"

_SHAPE_TEXT = re.compile(r"[1-9]\d*(?:x[1-9]\d*)*")


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int | str | None, ...]  # full shape incl. batch dim; str/None = dynamic dim
    dtype: str  # numpy dtype name: "float32", "int64", "bool", ...

    def concrete(self, batch: int) -> list[int]:
        """The shape with every dynamic dim set to ``batch``."""
        return [dim if isinstance(dim, int) else batch for dim in self.shape]

    def as_dict(self, batch: int) -> dict[str, object]:
        """The ``{name, shape, dtype}`` form that ``edgebench.board.synthetic_inputs.make_inputs`` takes."""
        return {"name": self.name, "shape": self.concrete(batch), "dtype": self.dtype}


def parse_input_shape(text: str) -> tuple[str | None, tuple[int, ...]]:
    """``"3x224x224"`` -> ``(None, (3, 224, 224))``; ``"ids=128"`` -> ``("ids", (128,))``.

    The name is split off at the last '=' because tensor names may contain any character.
    """
    name, equals, shape_text = text.rpartition("=")
    shape_text = shape_text.strip()
    if not _SHAPE_TEXT.fullmatch(shape_text):
        raise UsageError(
            f"bad input shape {text!r}: expected the dims after the batch dim, such as 3x224x224, "
            "or NAME=3x224x224 for one input of a multi-input model"
        )
    if equals and not name:
        raise UsageError(f"bad input shape {text!r}: the input name before '=' is empty")
    dims = tuple(int(dim) for dim in shape_text.split("x"))
    return (name if equals else None), dims


def input_shape_bindings(texts: Sequence[str]) -> list[tuple[str, ...]]:
    """``--input-shape`` values -> the ``--input-shape`` texts of each binding to measure, in order.

    ``["3x256x512,3x512x1024"]`` -> ``[("3x256x512",), ("3x512x1024",)]``. Inputs with alternatives
    go together by position (the n-th shape of each: an image and its mask at one resolution), so
    they must have as many; an input with a single shape keeps it in every binding. No values: one
    binding with the model's own shapes.
    """
    per_input = [_alternatives(text) for text in texts]
    counts = {len(alternatives) for alternatives in per_input if len(alternatives) > 1}
    if len(counts) > 1:
        swept = ", ".join(f"{text!r} ({len(alternatives)})" for text, alternatives in zip(texts, per_input)
                          if len(alternatives) > 1)
        raise UsageError(f"--input-shape alternatives pair up by position across inputs, so each input needs "
                         f"as many; got {swept}")
    count = counts.pop() if counts else 1
    bindings = [tuple(alternatives[index if len(alternatives) > 1 else 0] for alternatives in per_input)
                for index in range(count)]
    return list(dict.fromkeys(bindings))


def _alternatives(text: str) -> list[str]:
    """``"img=3x8x8,3x16x16"`` -> ``["img=3x8x8", "img=3x16x16"]``, each checked; the name is split
    off at the last '=' as ``parse_input_shape`` does, so it is written once."""
    name, equals, shapes = text.rpartition("=")
    alternatives = [f"{name}{equals}{shape.strip()}" for shape in shapes.split(",") if shape.strip()]
    for alternative in alternatives or [text]:
        parse_input_shape(alternative)
    return alternatives


def apply_input_shapes(
    model_name: str,
    declared: Sequence[InputSpec],
    texts: Sequence[str],
    *,
    check_rank: bool,
) -> tuple[InputSpec, ...]:
    """The model's inputs with the user's ``--input-shape`` overrides applied.

    ``check_rank`` is for inputs whose rank is fixed by the model (an ONNX graph, a torch.export
    program), not guessed by us.
    """
    by_name = {spec.name: spec for spec in declared}
    overridden: dict[str, InputSpec] = {}
    for text in texts:
        name, dims = parse_input_shape(text)
        spec = by_name[_input_name(model_name, declared, name)]
        if spec.name in overridden:
            # Repeating the option means more inputs; a sweep is one value with commas.
            sweep = f"{format_shape(overridden[spec.name].shape[1:])},{format_shape(dims)}"
            raise UsageError(f"input {spec.name!r} of {model_name} is given two shapes; to measure each, give "
                             f"them in one value: --input-shape {'' if name is None else name + '='}{sweep}")
        if check_rank and len(dims) != len(spec.shape) - 1:
            raise UsageError(
                f"input {spec.name!r} of {model_name} has shape {format_shape(spec.shape)}: "
                f"--input-shape needs its {len(spec.shape) - 1} dims after the batch dim, got {text!r}"
            )
        overridden[spec.name] = InputSpec(spec.name, (spec.shape[0], *dims), spec.dtype)
    return tuple(overridden.get(spec.name, spec) for spec in declared)


def inputs_from_shapes(model_name: str, texts: Sequence[str]) -> tuple[InputSpec, ...]:
    """Inputs for a model that does not declare them: all from ``--input-shape``, float32.

    Unnamed shapes are named ``input0, input1, ...`` by position.
    """
    if not texts:
        raise UsageError(
            f"{model_name} does not record its input shapes: pass --input-shape with the dims "
            "after the batch dim, such as --input-shape 3x224x224 (once per input)"
        )
    specs: dict[str, InputSpec] = {}
    for position, text in enumerate(texts):
        name, dims = parse_input_shape(text)
        name = f"input{position}" if name is None else name
        if name in specs:
            raise UsageError(f"input {name!r} of {model_name} is given two shapes")
        specs[name] = InputSpec(name, (BATCH_DIM, *dims), "float32")
    return tuple(specs.values())


def format_shape(shape: Sequence[int | str | None]) -> str:
    return "x".join("?" if dim is None else str(dim) for dim in shape)


def _input_name(model_name: str, declared: Sequence[InputSpec], name: str | None) -> str:
    names = ", ".join(repr(spec.name) for spec in declared)
    if name is None:
        if len(declared) != 1:
            raise UsageError(
                f"{model_name} has {len(declared)} inputs ({names}): give each shape as NAME=SHAPE"
            )
        return declared[0].name
    if name not in {spec.name for spec in declared}:
        raise UsageError(f"{model_name} has no input named {name!r}; its inputs are: {names}")
    return name

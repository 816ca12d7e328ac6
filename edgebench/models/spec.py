"""Parse what the user typed as a model into something we can load.

Accepted forms: ``torchvision:NAME[?k=v&...][#part]``, ``edgebench:NAME[?k=v&...][#part]`` (the
built-in models of ``edgebench.board.builtin_models``), ``package.module:callable[?k=v&...]`` and a
model file (``.onnx``, ``.pt2`` from ``torch.export.save``, ``.pt``/``.pth`` pickled module or
TorchScript). Torch forms become a ``build_module`` recipe (see ``edgebench.board.torch_models``).
``#network`` or ``#end_to_end`` picks what of a detector is measured (``edgebench.board.detector_parts``).
"""

from __future__ import annotations

import ast
import difflib
import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgebench.board.builtin_models import BUILTIN_MODELS
from edgebench.board.detector_parts import PARTS
from edgebench.errors import UsageError

ACCEPTED_FORMS = (
    "torchvision:NAME[?key=value&...][#network|#end_to_end]",
    "edgebench:NAME[?key=value&...][#network|#end_to_end]",
    "package.module:callable[?key=value&...]",
    "a model file (.onnx; .pt2 from torch.export.save; .pt/.pth from torch.save or TorchScript)",
)

# File suffix -> build_module recipe format; None means the file is run as ONNX directly.
FILE_FORMATS: dict[str, str | None] = {
    ".onnx": None,
    ".pt2": "torch-export",
    ".pt": "torch-file",
    ".pth": "torch-file",
}

_DOTTED_NAME = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_CALLABLE_TARGET = re.compile(rf"{_DOTTED_NAME}:{_DOTTED_NAME}")


@dataclass(frozen=True)
class ParsedSpec:
    """A model spec, parsed: exactly one of ``recipe`` and ``onnx_path`` is set."""

    name: str
    recipe: dict[str, Any] | None = None
    onnx_path: Path | None = None


def parse_spec(spec: str) -> ParsedSpec:
    """Turn a spec string into a recipe or an ONNX path; UsageError if it names nothing loadable."""
    text = spec.strip()
    is_model_file_name = Path(text).suffix.lower() in FILE_FORMATS
    # An existing file wins: file names may contain ':' and '?' too.
    if is_model_file_name and Path(text).expanduser().is_file():
        return _parse_file(Path(text).expanduser())
    rest, has_part, part = text.partition("#")
    target, _, query = rest.partition("?")
    if target.startswith(("torchvision:", "edgebench:")):
        if has_part and part not in PARTS:
            raise UsageError(f"unknown model part {part!r} in {spec!r}; choose one of {', '.join(PARTS)}")
        library, _, name = target.partition(":")
        parse = _parse_torchvision if library == "torchvision" else _parse_builtin
        return parse(name, parse_kwargs(query), part or None)
    if has_part:
        raise UsageError(f"'#{part}' applies to torchvision: and edgebench: detectors only, not {target!r}")
    if _CALLABLE_TARGET.fullmatch(target):
        return _parse_callable(target, parse_kwargs(query))
    if is_model_file_name:
        raise UsageError(f"no such model file: {text}")
    forms = ", ".join(ACCEPTED_FORMS[:-1]) + " or " + ACCEPTED_FORMS[-1]
    raise UsageError(f"cannot tell what model {spec!r} is; use {forms}")


def parse_kwargs(query: str) -> dict[str, Any]:
    """``a=1&b=x`` -> ``{"a": 1, "b": "x"}``: values are Python literals (``None``, ``1e-3``,
    ``(1,2)``, ``'x'``) or true/false; anything else stays the plain string."""
    if not query:
        return {}
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise UsageError(f"bad model arguments {query!r}: expected key=value pairs joined by '&'")
    kwargs: dict[str, Any] = {}
    for key, value in pairs:
        if key in kwargs:
            raise UsageError(f"model argument {key!r} is given twice")
        kwargs[key] = _convert_value(value)
    return kwargs


def _convert_value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        # Not a literal: a bare word such as mode=fast is meant as the string.
        return text


def _parse_file(path: Path) -> ParsedSpec:
    path = path.resolve()
    recipe_format = FILE_FORMATS[path.suffix.lower()]
    if recipe_format is None:
        return ParsedSpec(name=path.name, onnx_path=path)
    return ParsedSpec(name=path.name, recipe={"format": recipe_format, "path": str(path)})


def _parse_torchvision(name: str, kwargs: dict[str, Any], part: str | None) -> ParsedSpec:
    import torchvision

    known = torchvision.models.list_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=5)
        hint = f"did you mean: {', '.join(close)}?" if close else "see torchvision.models.list_models()"
        raise UsageError(f"torchvision has no model named {name!r}; {hint}")
    return _library_spec("torchvision", name, kwargs, part)


def _parse_builtin(name: str, kwargs: dict[str, Any], part: str | None) -> ParsedSpec:
    if name not in BUILTIN_MODELS:
        raise UsageError(BUILTIN_MODELS.unknown(name))
    return _library_spec("edgebench", name, kwargs, part)


def _library_spec(library: str, name: str, kwargs: dict[str, Any], part: str | None) -> ParsedSpec:
    """A recipe ``build_module`` reads; the part is settled once the module shows it is a detector."""
    recipe = {"format": library, "name": name, "kwargs": kwargs}
    if part:
        recipe["part"] = part
    return ParsedSpec(name=f"{library}:{name}{_query(kwargs)}", recipe=recipe)


def _parse_callable(target: str, kwargs: dict[str, Any]) -> ParsedSpec:
    # The user's package is imported the way `python -c "import package"` would find it.
    recipe = {"format": "callable", "target": target, "kwargs": kwargs, "sys_path": [os.getcwd()]}
    return ParsedSpec(name=target + _query(kwargs), recipe=recipe)


def _query(kwargs: dict[str, Any]) -> str:
    """The arguments in the display name, so two variants of one model never share a name."""
    return "?" + urllib.parse.urlencode(kwargs) if kwargs else ""


def with_part(name: str, part: str) -> str:
    """The display name of one part of a detector, so network and end-to-end records never share one."""
    return f"{name}#{part}"

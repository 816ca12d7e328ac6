"""Parsing of option values the shell hands over as text."""

from __future__ import annotations

from collections.abc import Iterable

from edgebench.errors import UsageError
from edgebench.board.runners import runner_class, runner_names

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def comma_list(values: Iterable[str]) -> list[str]:
    """``["eager,onnxruntime", "tensorrt"]`` -> ``["eager", "onnxruntime", "tensorrt"]``."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def positive_ints(values: Iterable[str], option: str) -> list[int]:
    numbers = []
    for item in comma_list(values):
        try:
            number = int(item)
        except ValueError:
            raise UsageError(f"{option} takes whole numbers, not {item!r}") from None
        if number < 1:
            raise UsageError(f"{option} must be at least 1, not {number}")
        numbers.append(number)
    return list(dict.fromkeys(numbers))


def key_values(values: Iterable[str], option: str) -> dict[str, str]:
    pairs = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} takes KEY=VALUE, not {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def backend_options(values: Iterable[str]) -> dict[str, dict]:
    """``onnxruntime.allow_spinning=0`` -> ``{"onnxruntime": {"allow_spinning": False}}``,
    checked against the options each runner declares."""
    options: dict[str, dict] = {}
    for key, text in key_values(values, "--backend-option").items():
        backend, dot, name = key.partition(".")
        if not dot:
            raise UsageError(f"--backend-option takes BACKEND.KEY=VALUE, not {key!r}")
        if backend not in runner_names():
            raise UsageError(f"--backend-option: unknown backend {backend!r}; known: {', '.join(runner_names())}")
        types = runner_class(backend).option_types
        if name not in types:
            raise UsageError(
                f"--backend-option: {backend} has no option {name!r}; it has: {', '.join(sorted(types))}"
            )
        options.setdefault(backend, {})[name] = _typed(text, types[name], key)
    return options


def _typed(text: str, kind: type, key: str):
    if kind is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise UsageError(f"--backend-option {key} takes a boolean (1/0, true/false), not {text!r}")
    try:
        return kind(text)
    except ValueError:
        raise UsageError(f"--backend-option {key} takes a {kind.__name__}, not {text!r}") from None

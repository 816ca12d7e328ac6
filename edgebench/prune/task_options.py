"""Options of the built-in tasks (``NAME?key=value&...``): checked against the task's defaults,
validated with one clear line each, and shown in the task's name.

Every built-in task takes its options as keyword arguments with a ``DEFAULTS`` dict; these helpers
keep the messages and the naming rule the same across tasks.
"""

from __future__ import annotations

from typing import Any

from edgebench.errors import UsageError


def with_defaults(task: str, options: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` updated by ``options``; UsageError naming any option the task does not have."""
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise UsageError(
            f"the {task} task has no option {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(sorted(defaults))}"
        )
    return {**defaults, **options}


def options_query(options: dict[str, Any], defaults: dict[str, Any], always: tuple[str, ...] = ("size",)) -> str:
    """``?size=32`` plus every option that differs from its default: distinct tasks, distinct names."""
    shown = {k: v for k, v in options.items() if k in always or v != defaults[k]}
    return "?" + "&".join(f"{k}={v}" for k, v in shown.items())


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require_int(task: str, option: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    """UsageError unless ``value`` is an integer in [minimum, maximum]."""
    if not is_int(value) or value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise UsageError(f"{task} {option} must be an integer {bound}, got {value!r}")


def require_positive(task: str, option: str, value: Any) -> None:
    """UsageError unless ``value`` is a number above zero."""
    if not is_number(value) or value <= 0:
        raise UsageError(f"{task} {option} must be a positive number, got {value!r}")


def require_between(task: str, option: str, value: Any, low: float, high: float) -> None:
    """UsageError unless ``value`` is a number in [low, high]."""
    if not is_number(value) or not low <= value <= high:
        raise UsageError(f"{task} {option} must be between {low} and {high}, got {value!r}")


def require_choice(task: str, option: str, value: Any, choices: tuple[str, ...]) -> None:
    """UsageError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise UsageError(f"{task} {option} must be one of {', '.join(choices)}, got {value!r}")

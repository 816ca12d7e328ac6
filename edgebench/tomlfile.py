"""Validated TOML files (targets, suites): read, check against a pydantic model, fail in one line.

Every problem is a UsageError naming the file, the field and what is wrong with it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from edgebench.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

Model = TypeVar("Model", bound=BaseModel)


def load_toml(path: Path, schema: type[Model], what: str) -> Model:
    """The file at ``path`` validated as ``schema``; ``what`` names the kind of file in messages."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"no such {what}: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{what} {path} is not valid TOML: {exc}") from None
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise UsageError(f"invalid {what} {path}: {first_problem(exc)}") from None


def first_problem(exc: ValidationError) -> str:
    """The first validation error as ``field a.b.0: message``, counting the others."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "(file)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"field {field}: {error['msg']}{more}"

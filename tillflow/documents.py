"""Input files and pydantic errors: reading a YAML/TOML file into a model, and saying what was wrong.

The one home of two rules that every input shares (the store catalogue, source files, file specs, the
collector spec, lease and campaign books, routing files, the settings file; JSONL records and topic records):

- a pydantic ``ValidationError`` reads as ``key.path[0]: reason`` per problem (:func:`validation_problems`),
  on one line joined by ``; `` for a record (:func:`validation_reason`), one line per problem prefixed by the
  file for a file (:func:`validation_lines`);
- a file is read as YAML (``.yaml``/``.yml``/anything else) or TOML (``.toml``) and validated as a model, with
  a :class:`~tillflow.errors.ConfigError` (or the subclass given) naming the file and the reason
  (:func:`read_document`, :func:`validate_document`, :func:`load_document`).

Like ``tillflow/errors.py`` it imports nothing else of tillflow's, so ``schemas/`` may use it too.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from tillflow.errors import ConfigError

__all__ = [
    "error_location",
    "load_document",
    "read_document",
    "validate_checked",
    "validate_document",
    "validation_lines",
    "validation_problems",
    "validation_reason",
]

M = TypeVar("M", bound=BaseModel)


def error_location(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a key path: ``("stores", 0, "timezone")`` reads ``stores[0].timezone``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def validation_problems(exc: ValidationError, top: str = "") -> list[str]:
    """Each problem as ``key.path: reason``; ``top`` names a problem of the whole object (else just the reason)."""
    problems = []
    for err in exc.errors():
        where = error_location(err["loc"]) or top
        msg = err["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {msg}" if where else msg)
    return problems


def validation_reason(exc: ValidationError, top: str = "") -> str:
    """A ``ValidationError`` on one line, ``key.path: reason; key.path: reason`` (for a record's reject reason)."""
    return "; ".join(validation_problems(exc, top))


def validation_lines(path: Path | str, exc: ValidationError) -> str:
    """A ``ValidationError`` of a file's content: one line per problem, ``file: key.path: reason``."""
    return "\n".join(f"{path}: {problem}" for problem in validation_problems(exc, "(top level)"))


def read_document(path: str | Path, error: type[ValueError] = ConfigError) -> Any:
    """The parsed content of a .yaml, .yml or .toml file; ``error`` names the file and why it cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise error(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {exc}") from None


def validate_document(
    model: type[M], data: Any, path: Path | str, error: type[ValueError] = ConfigError, expected: str = "keys"
) -> M:
    """``data`` (a parsed file) as ``model``; ``error`` names the file, each key path and the reason."""
    if not isinstance(data, dict):
        raise error(f"{path}: (top level): expected a mapping with {expected}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(validation_lines(path, exc)) from None


def validate_checked(
    model: type[M],
    data: Any,
    path: Path | str,
    error: type[ValueError],
    expected: str,
    problems: Callable[[M], list[str]],
) -> M:
    """:func:`validate_document`, then ``problems`` (rules across records, such as references to the store
    catalogue): any it finds, one per line, raise ``error``."""
    document = validate_document(model, data, path, error, expected)
    found = problems(document)
    if found:
        raise error("\n".join(found))
    return document


def load_document(path: str | Path, model: type[M], error: type[ValueError] = ConfigError, expected: str = "keys") -> M:
    """Read ``path`` (YAML or TOML) and validate it as ``model``: :func:`read_document` then
    :func:`validate_document`."""
    return validate_document(model, read_document(path, error), path, error, expected)

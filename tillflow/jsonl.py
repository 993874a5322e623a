"""Reading records from JSONL files: each line validated against its topic's model; bad lines kept with a reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from schemas.models import Record, redact_personal_data
from tillflow.documents import validation_reason


@dataclass(frozen=True)
class Reject:
    """A line that is not a valid record: its 1-based number, why, and the line as it was."""

    line: int
    reason: str
    original: str

    def to_json(self) -> dict[str, object]:
        return {"line": self.line, "reason": self.reason, "original": self.original}


def parse_line(text: str, model: type[Record]) -> Record:
    """One JSON object validated as ``model``; ValueError with the reason otherwise."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValueError(validation_reason(exc)) from None
    except ValueError as exc:  # raised before field validation (personal-data fields)
        raise ValueError(str(exc)) from None


def read_numbered(path: Path, model: type[Record]) -> Iterator[tuple[int, str, Record | Reject]]:
    """Every non-blank line of ``path`` as (1-based number, text, record or :class:`Reject`), in file order."""
    with path.open(encoding="utf-8", errors="surrogateescape") as f:
        for number, raw in enumerate(f, start=1):
            text = raw.rstrip("\r\n")
            if not text.strip():
                continue
            readable = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            try:
                yield number, readable, parse_line(text, model)
            except ValueError as exc:
                yield number, readable, Reject(number, str(exc), redacted_line(readable))


def redacted_line(text: str) -> str:
    """A refused line as a rejects file may keep it: a JSON object with every personal-data field's value
    redacted (names kept, schemas.models.redact_personal_data); other text as it is."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text
    redacted = redact_personal_data(data)
    return text if redacted == data else json.dumps(redacted, ensure_ascii=False)


def is_rejects_file(path: Path) -> bool:
    """Whether ``path`` holds only rejects (JSON objects with line, reason and original), as produce writes."""
    try:
        with path.open(encoding="utf-8") as f:
            for raw in f:
                entry = json.loads(raw)
                if not isinstance(entry, dict) or set(entry) != {"line", "reason", "original"}:
                    return False
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return True


def default_rejects_path(path: Path) -> Path:
    """``tickets.jsonl`` -> ``tickets.rejects.jsonl`` beside it."""
    return path.with_name(f"{path.stem}.rejects.jsonl" if path.suffix == ".jsonl" else f"{path.name}.rejects.jsonl")

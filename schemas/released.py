"""Released schema versions: ``schemas/released/<subject>/v<N>.avsc``, one folder per registry subject.

A released version is one that may have been written to a topic; today's schema in ``schemas/avro`` must
stay BACKWARD-compatible with every one of them (a consumer on today's schema reads all old records).
``tillflow schemas check`` enforces it; ``tillflow schemas release`` adds today's schema as the next version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.compat import check, schema_key
from schemas.serde import AVRO_DIR
from schemas.topics import TOPICS, TopicSpec

RELEASED_DIR = Path(__file__).parent / "released"
_VERSION_FILE = re.compile(r"v([1-9][0-9]*)\.avsc")


@dataclass(frozen=True)
class SubjectCheck:
    """The outcome for one subject: problems (empty when compatible) and whether today's schema is new."""

    subject: str
    current: Path
    released: list[Path]
    problems: list[str]
    unreleased_change: bool


def released_versions(subject: str, root: Path = RELEASED_DIR) -> list[Path]:
    """Released schema files of a subject, oldest first (v1, v2, ... v10 in numeric order)."""
    folder = root / subject
    found = [(int(m.group(1)), p) for p in folder.glob("v*.avsc") if (m := _VERSION_FILE.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read schema: {exc}") from None


def check_subject(
    subject: str, current: Any, released: list[Any], level: str = "BACKWARD_TRANSITIVE"
) -> tuple[list[str], bool]:
    """Problems of ``current`` against the ``released`` schemas (oldest first) and whether it differs from
    the latest one. Pure: schemas are JSON values."""
    problems = check(current, released, level)
    changed = not released or schema_key(current) != schema_key(released[-1])
    return problems, changed


def check_released(root: Path = RELEASED_DIR, avro_dir: Path = AVRO_DIR) -> list[SubjectCheck]:
    """Check every topic's schema in ``avro_dir`` against its released versions under ``root``."""
    results = []
    for spec in TOPICS.values():
        current_path = avro_dir / f"{spec.model.avro_name}.avsc"
        paths = released_versions(spec.subject, root)
        problems, changed = check_subject(spec.subject, _load(current_path), [_load(p) for p in paths])
        results.append(SubjectCheck(spec.subject, current_path, paths, problems, changed and bool(paths)))
    return results


def release(spec: TopicSpec, root: Path = RELEASED_DIR, avro_dir: Path = AVRO_DIR) -> Path | None:
    """Copy today's schema of ``spec`` as the next released version; None when it equals the latest.

    Raises ValueError when today's schema is not BACKWARD-compatible with every released version.
    """
    current_path = avro_dir / f"{spec.model.avro_name}.avsc"
    current = _load(current_path)
    paths = released_versions(spec.subject, root)
    problems, changed = check_subject(spec.subject, current, [_load(p) for p in paths])
    if problems:
        raise ValueError(f"{spec.subject}: " + "; ".join(problems))
    if not changed:
        return None
    last = int(_VERSION_FILE.fullmatch(paths[-1].name).group(1)) if paths else 0  # type: ignore[union-attr]
    target = root / spec.subject / f"v{last + 1}.avsc"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(current_path.read_text(encoding="utf-8"), encoding="utf-8")
    return target

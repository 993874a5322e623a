"""The folders show the data flow: each layer imports only the layers below it (shared plumbing lives in tillflow/).

schemas/ (the contracts) may use tillflow's dependency-free leaves (errors, documents); tillflow/ never imports
producers, streams, sinks or analytics; producers, streams and sinks never borrow from one another; analytics,
the last step (reports over ClickHouse), may use any of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {
    "schemas": {"schemas", "tillflow.errors", "tillflow.documents"},
    "tillflow": {"schemas", "tillflow"},
    "producers": {"schemas", "tillflow", "producers"},
    "streams": {"schemas", "tillflow", "streams"},
    "sinks": {"schemas", "tillflow", "sinks"},
    "analytics": {"schemas", "tillflow", "producers", "sinks", "analytics"},  # reads what the rest landed
}
PROJECT = set(ALLOWED)


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] in PROJECT]


def _allowed(name: str, allowed: set[str]) -> bool:
    return any(name == a or name.startswith(a + ".") for a in allowed)


def test_every_import_goes_down_the_data_flow() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for package, allowed in ALLOWED.items()
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, name in _imports(path)
        if not _allowed(name, allowed)
    ]
    assert wrong == []


def test_the_leaves_schemas_may_use_import_nothing_of_the_project_but_errors() -> None:
    for leaf in ("errors", "documents"):
        names = {name for _, name in _imports(ROOT / "tillflow" / f"{leaf}.py")}
        assert names <= {"tillflow.errors"}, (leaf, names)

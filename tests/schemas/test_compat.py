"""Avro schema resolution (schemas.compat): positive and negative cases for every rule of the spec."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from schemas import compat
from schemas.compat import SchemaError, can_read, check, parse, schema_key

AVRO = Path(__file__).resolve().parents[2] / "schemas" / "avro"


def record(name: str, *fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields), **extra}


def field(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def kinds(problems: list[compat.Incompatibility]) -> list[str]:
    return [p.kind for p in problems]


@pytest.mark.parametrize("path", sorted(AVRO.glob("*.avsc")), ids=lambda p: p.stem)
def test_every_contract_reads_itself(path: Path) -> None:
    schema = json.loads(path.read_text())
    assert can_read(schema, schema) == []
    assert check(schema, [schema], "FULL_TRANSITIVE") == []


def test_reader_field_added_needs_a_default() -> None:
    old = record("T", field("a", "int"))
    with_default = record("T", field("a", "int"), field("b", "string", default=""))
    without = record("T", field("a", "int"), field("b", "string"))
    assert can_read(with_default, old) == []
    problems = can_read(without, old)
    assert kinds(problems) == [compat.READER_FIELD_MISSING_DEFAULT_VALUE]
    assert problems[0].path == "T.b"
    assert "'b'" in str(problems[0]) and "no default" in str(problems[0])


def test_removed_field_is_backward_but_not_forward_compatible() -> None:
    old = record("T", field("a", "int"), field("b", "string"))
    new = record("T", field("a", "int"))
    assert check(new, [old], "BACKWARD") == []
    forward = check(new, [old], "FORWARD")
    assert len(forward) == 1 and "T.b" in forward[0] and "version 1 cannot read" in forward[0]
    assert check(new, [old], "FULL") == forward
    # With a default in the old schema the removal is fully compatible.
    old_with_default = record("T", field("a", "int"), field("b", "string", default="x"))
    assert check(new, [old_with_default], "FULL") == []


def test_field_found_through_an_alias() -> None:
    old = record("T", field("amount", "long"))
    renamed = record("T", field("net_amount", "long", aliases=["amount"]))
    assert can_read(renamed, old) == []
    assert kinds(can_read(record("T", field("net_amount", "long")), old)) == [compat.READER_FIELD_MISSING_DEFAULT_VALUE]


def test_record_names_must_match_unless_aliased() -> None:
    old = record("Old", field("a", "int"), namespace="x")
    assert kinds(can_read(record("New", field("a", "int"), namespace="x"), old)) == [compat.NAME_MISMATCH]
    assert can_read(record("New", field("a", "int"), namespace="x", aliases=["Old"]), old) == []
    # Only the unqualified name counts, as in Avro's Java SchemaCompatibility.
    assert can_read(record("Old", field("a", "int"), namespace="y"), old) == []


@pytest.mark.parametrize(
    ("writer", "reader"),
    [
        ("int", "long"),
        ("int", "float"),
        ("int", "double"),
        ("long", "float"),
        ("long", "double"),
        ("float", "double"),
        ("string", "bytes"),
        ("bytes", "string"),
        ("boolean", "boolean"),
    ],
)
def test_promotions_allowed(writer: str, reader: str) -> None:
    assert can_read(reader, writer) == []


@pytest.mark.parametrize(
    ("writer", "reader"),
    [
        ("long", "int"),
        ("double", "float"),
        ("double", "long"),
        ("string", "int"),
        ("boolean", "int"),
        ("null", "string"),
    ],
)
def test_narrowing_refused(writer: str, reader: str) -> None:
    problems = can_read(reader, writer)
    assert kinds(problems) == [compat.TYPE_MISMATCH]
    assert f"expects {reader}" in problems[0].reason and f"wrote {writer}" in problems[0].reason


def test_enum_symbols() -> None:
    old = {"type": "enum", "name": "K", "symbols": ["A", "B"]}
    grown = {"type": "enum", "name": "K", "symbols": ["A", "B", "C"]}
    shrunk = {"type": "enum", "name": "K", "symbols": ["A"]}
    shrunk_with_default = {"type": "enum", "name": "K", "symbols": ["A"], "default": "A"}
    assert can_read(grown, old) == []
    problems = can_read(shrunk, old)
    assert kinds(problems) == [compat.MISSING_ENUM_SYMBOLS] and "B" in problems[0].reason
    assert can_read(shrunk_with_default, old) == []
    assert kinds(can_read({"type": "enum", "name": "Other", "symbols": ["A", "B"]}, old)) == [compat.NAME_MISMATCH]


def test_unions() -> None:
    nullable_string = ["null", "string"]
    assert can_read(nullable_string, "string") == []  # reader union holds the writer's type
    assert can_read(["null", "long"], ["null", "int"]) == []  # branch by branch, with promotion
    problems = can_read("string", nullable_string)  # the writer may have written null
    assert kinds(problems) == [compat.TYPE_MISMATCH] and "wrote null" in problems[0].reason
    assert kinds(can_read(["null", "string"], "int")) == [compat.MISSING_UNION_BRANCH]
    assert kinds(can_read(["null", "string"], ["null", "string", "int"])) == [compat.MISSING_UNION_BRANCH]


def test_arrays_maps_and_fixed() -> None:
    assert can_read({"type": "array", "items": "long"}, {"type": "array", "items": "int"}) == []
    problems = can_read({"type": "array", "items": "int"}, {"type": "array", "items": "long"})
    assert kinds(problems) == [compat.TYPE_MISMATCH] and problems[0].path == "$[]"
    assert can_read({"type": "map", "values": "double"}, {"type": "map", "values": "float"}) == []
    assert kinds(can_read({"type": "map", "values": "int"}, {"type": "map", "values": "string"})) == [
        compat.TYPE_MISMATCH
    ]
    assert kinds(can_read({"type": "array", "items": "int"}, {"type": "map", "values": "int"})) == [
        compat.TYPE_MISMATCH
    ]
    fixed = {"type": "fixed", "name": "F", "size": 16}
    assert can_read(fixed, fixed) == []
    assert kinds(can_read({**fixed, "size": 8}, fixed)) == [compat.FIXED_SIZE_MISMATCH]
    assert kinds(can_read({**fixed, "name": "G"}, fixed)) == [compat.NAME_MISMATCH]


def test_nested_change_reports_its_path() -> None:
    ticket = json.loads((AVRO / "pos_ticket.avsc").read_text())
    changed = copy.deepcopy(ticket)
    line = next(f for f in changed["fields"] if f["name"] == "lines")["type"]["items"]
    next(f for f in line["fields"] if f["name"] == "quantity")["type"] = "long"
    problems = can_read(changed, ticket)
    assert [str(p) for p in problems] == ["PosTicket.lines[].quantity: reader expects long but the writer wrote double"]


def test_named_type_references_resolve() -> None:
    schema = record(
        "T",
        field("first", {"type": "enum", "name": "K", "symbols": ["A"]}),
        field("second", "K"),
        namespace="ns",
    )
    grown = copy.deepcopy(schema)
    grown["fields"][0]["type"]["symbols"] = ["A", "B"]
    assert can_read(grown, schema) == []
    problems = can_read(schema, grown)  # both fields use K: both report the missing symbol
    assert [p.path for p in problems] == ["T.first", "T.second"]


def test_recursive_types_terminate() -> None:
    node = record("Node", field("value", "int"), field("next", ["null", "Node"], default=None))
    wider = record("Node", field("value", "long"), field("next", ["null", "Node"], default=None))
    assert can_read(wider, node) == []
    assert kinds(can_read(node, wider)) == [compat.TYPE_MISMATCH]


def test_transitive_levels_check_every_version() -> None:
    v1 = record("T", field("x", "string"))
    v2 = record("T", field("x", "int"))
    new = record("T", field("x", "long"))
    assert check(new, [v1, v2], "BACKWARD") == []
    problems = check(new, [v1, v2], "BACKWARD_TRANSITIVE")
    assert problems == ["new schema cannot read version 1: T.x: reader expects long but the writer wrote string"]
    assert check(new, [v1, v2], "NONE") == []
    assert check(new, [], "FULL_TRANSITIVE") == []
    with pytest.raises(ValueError, match="unknown compatibility level"):
        check(new, [v1], "SIDEWAYS")


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ("{not json", "not JSON"),
        ({"type": "record", "name": "T", "fields": [{"name": "a", "type": "Missing"}]}, "unknown type"),
        (record("T", field("a", "int"), field("a", "long")), "duplicate field"),
        (record("T", field("a", ["string", "null"], default=None)), "first branch"),
        (record("T", field("a", "int", default="zero")), "not a valid int"),
        ({"type": "enum", "name": "K", "symbols": ["A"], "default": "B"}, "not one of the symbols"),
        ({"type": "enum", "name": "K", "symbols": ["A", "A"]}, "duplicate symbols"),
        ({"type": "fixed", "name": "F"}, "size"),
        (["null", "null"], "two branches"),
        ({"type": "record", "name": "9bad", "fields": []}, "not a valid Avro name"),
        ({"type": "array"}, "needs items"),
    ],
)
def test_invalid_schemas_are_refused(schema: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        parse(schema if isinstance(schema, str) else json.dumps(schema))


def test_schema_key_ignores_layout_and_qualification() -> None:
    a = record("T", field("a", "int"), field("k", {"type": "enum", "name": "K", "symbols": ["A"]}), namespace="ns")
    b = {
        "fields": [
            {"type": {"type": "int"}, "name": "a"},
            {"name": "k", "type": {"symbols": ["A"], "name": "ns.K", "type": "enum"}},
        ],
        "name": "ns.T",
        "type": "record",
    }
    assert schema_key(a) == schema_key(json.loads(json.dumps(b, indent=4)))
    c = copy.deepcopy(a)
    c["fields"][0]["default"] = 0
    assert schema_key(a) != schema_key(c)


RESOLUTION_CASES: list[tuple[Any, Any, Any]] = [
    # (writer, reader, datum written with writer)
    ("int", "long", 7),
    ("int", "double", 7),
    ("float", "double", 1.5),
    ("string", "bytes", "abc"),
    (["null", "int"], ["null", "long"], None),
    ("string", ["null", "string"], "x"),
    (record("T", field("a", "int")), record("T", field("a", "int"), field("b", "string", default="d")), {"a": 1}),
    (record("T", field("a", "int"), field("b", "string")), record("T", field("a", "long")), {"a": 1, "b": "x"}),
    (record("T", field("old", "int")), record("T", field("new", "int", aliases=["old"])), {"old": 3}),
    (
        {"type": "enum", "name": "K", "symbols": ["A", "B"]},
        {"type": "enum", "name": "K", "symbols": ["A"], "default": "A"},
        "B",
    ),
    ({"type": "map", "values": "int"}, {"type": "map", "values": "double"}, {"k": 1}),
    ({"type": "array", "items": "int"}, {"type": "array", "items": "long"}, [1, 2]),
]
REFUSED_CASES: list[tuple[Any, Any, Any]] = [
    ("long", "int", 7),
    ("string", "int", "x"),
    (["null", "string"], "string", None),
    (record("T", field("a", "int")), record("T", field("a", "int"), field("b", "string")), {"a": 1}),
    ({"type": "enum", "name": "K", "symbols": ["A", "B"]}, {"type": "enum", "name": "K", "symbols": ["A"]}, "B"),
    ({"type": "fixed", "name": "F", "size": 2}, {"type": "fixed", "name": "F", "size": 3}, b"ab"),
]


def _fastavro_reads(writer: Any, reader: Any, datum: Any) -> Any:
    import io

    import fastavro

    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(copy.deepcopy(writer)), datum)
    buf.seek(0)
    return fastavro.schemaless_reader(buf, fastavro.parse_schema(writer), fastavro.parse_schema(reader))


@pytest.mark.parametrize(("writer", "reader", "datum"), RESOLUTION_CASES)
def test_compatible_verdicts_agree_with_fastavro(writer: Any, reader: Any, datum: Any) -> None:
    assert can_read(reader, writer) == []
    _fastavro_reads(writer, reader, datum)  # resolves without error


@pytest.mark.parametrize(("writer", "reader", "datum"), REFUSED_CASES)
def test_incompatible_verdicts_agree_with_fastavro(writer: Any, reader: Any, datum: Any) -> None:
    assert can_read(reader, writer) != []
    with pytest.raises(Exception):  # noqa: B017 - fastavro raises several types for resolution failures
        _fastavro_reads(writer, reader, datum)

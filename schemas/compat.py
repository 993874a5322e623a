"""Avro schema compatibility by the schema-resolution rules of the Avro specification.

``can_read(reader, writer)`` lists why data written with ``writer`` could not be read with ``reader``;
``check(new, previous, level)`` applies a Confluent compatibility level (BACKWARD reads the previous
versions with the new schema, FORWARD the reverse, FULL both; *_TRANSITIVE against every previous version
instead of only the latest). Schemas are the parsed JSON (``json.loads`` of an .avsc). Plain functions, no I/O.

Rules (https://avro.apache.org/docs/1.12.0/specification/#schema-resolution):
- records match by unqualified name or a reader alias; each reader field is found in the writer by name or
  by one of its aliases, else it needs a default; writer fields the reader lacks are skipped;
- enums match by name; a writer symbol missing from the reader is an error unless the reader enum has a
  default; fixed types match by name and size;
- arrays and maps resolve their items and values; a writer union needs every branch readable by the reader,
  a reader union needs one branch that reads the writer;
- promotions: int to long, float or double; long to float or double; float to double; string and bytes
  either way. Logical types do not change resolution (as in Avro's Java ``SchemaCompatibility``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tillflow.errors import ContractError

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}
LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)

# Incompatibility kinds, named as in Avro's Java SchemaCompatibility.SchemaIncompatibilityType.
NAME_MISMATCH = "NAME_MISMATCH"
FIXED_SIZE_MISMATCH = "FIXED_SIZE_MISMATCH"
MISSING_ENUM_SYMBOLS = "MISSING_ENUM_SYMBOLS"
READER_FIELD_MISSING_DEFAULT_VALUE = "READER_FIELD_MISSING_DEFAULT_VALUE"
TYPE_MISMATCH = "TYPE_MISMATCH"
MISSING_UNION_BRANCH = "MISSING_UNION_BRANCH"


class SchemaError(ContractError):
    """Text or JSON that is not a valid Avro schema."""


@dataclass(frozen=True)
class Incompatibility:
    """One reason a reader cannot read a writer's data: where (``path`` in the reader) and why."""

    kind: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


# --- parsing: resolve named-type references so the comparison can walk one tree ------------------------


@dataclass(eq=False)
class _Named:
    kind: str  # record | enum | fixed
    fullname: str
    aliases: frozenset[str]
    fields: list[_Field] | None = None
    symbols: tuple[str, ...] = ()
    enum_default: str | None = None
    size: int = 0

    @property
    def name(self) -> str:
        return self.fullname.rsplit(".", 1)[-1]


@dataclass(eq=False)
class _Field:
    name: str
    aliases: frozenset[str]
    type: Any
    has_default: bool
    default: Any = None


@dataclass(eq=False)
class _Array:
    items: Any


@dataclass(eq=False)
class _Map:
    values: Any


@dataclass(eq=False)
class _Union:
    branches: list[Any]


def _fullname(name: str, namespace: str | None) -> str:
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise SchemaError(f"{where}: a name must be a non-empty string, got {name!r}")
    for part in name.split("."):
        if not part or not (part[0].isalpha() or part[0] == "_") or not all(c.isalnum() or c == "_" for c in part):
            raise SchemaError(f"{where}: {name!r} is not a valid Avro name")
    return name


def _parse(node: Any, namespace: str | None, names: dict[str, _Named], where: str) -> Any:
    if isinstance(node, str):
        if node in PRIMITIVES:
            return node
        for candidate in (_fullname(node, namespace), node):
            if candidate in names:
                return names[candidate]
        raise SchemaError(f"{where}: unknown type {node!r}")
    if isinstance(node, list):
        branches = [_parse(b, namespace, names, f"{where}[{i}]") for i, b in enumerate(node)]
        seen: set[str] = set()
        for i, branch in enumerate(branches):
            if isinstance(branch, _Union):
                raise SchemaError(f"{where}[{i}]: a union may not contain a union")
            key = branch.fullname if isinstance(branch, _Named) else _describe(branch).split("<")[0]
            if key in seen:
                raise SchemaError(f"{where}: union has two branches of type {key}")
            seen.add(key)
        return _Union(branches)
    if not isinstance(node, dict):
        raise SchemaError(f"{where}: expected a type name, list or object, got {node!r}")
    kind = node.get("type")
    if isinstance(kind, str) and kind in PRIMITIVES:
        return kind
    if kind in ("record", "error", "enum", "fixed"):
        name = _check_name(node.get("name"), where)
        ns = node.get("namespace", namespace) if "." not in name else name.rsplit(".", 1)[0]
        if ns is not None and not isinstance(ns, str):
            raise SchemaError(f"{where}: namespace must be a string")
        full = _fullname(name, ns or None)
        if full in names:
            raise SchemaError(f"{where}: type {full!r} is defined twice")
        aliases = node.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise SchemaError(f"{where}: aliases must be a list of names")
        named = _Named(
            "record" if kind == "error" else kind, full, frozenset(_fullname(a, ns or None) for a in aliases)
        )
        names[full] = named
        if named.kind == "record":
            fields = node.get("fields")
            if not isinstance(fields, list):
                raise SchemaError(f"{where}: record {full} needs a list of fields")
            named.fields = []
            field_names: set[str] = set()
            for i, field in enumerate(fields):
                fwhere = f"{where}.fields[{i}]"
                if not isinstance(field, dict) or "type" not in field:
                    raise SchemaError(f"{fwhere}: a field needs a name and a type")
                fname = _check_name(field.get("name"), fwhere)
                if fname in field_names:
                    raise SchemaError(f"{fwhere}: duplicate field {fname!r} in {full}")
                field_names.add(fname)
                ftype = _parse(field["type"], ns or None, names, f"{where}.{fname}")
                has_default = "default" in field
                if has_default and not _default_fits(ftype, field["default"]):
                    raise SchemaError(
                        f"{where}.{fname}: default {json.dumps(field['default'])} is not a valid "
                        f"{_describe(ftype)} (a union's default must match its first branch)"
                    )
                faliases = field.get("aliases", [])
                named.fields.append(_Field(fname, frozenset(faliases), ftype, has_default, field.get("default")))
        elif named.kind == "enum":
            symbols = node.get("symbols")
            if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                raise SchemaError(f"{where}: enum {full} needs a list of symbols")
            if len(set(symbols)) != len(symbols):
                raise SchemaError(f"{where}: enum {full} has duplicate symbols")
            for s in symbols:
                _check_name(s, f"{where}.symbols")
            named.symbols = tuple(symbols)
            default = node.get("default")
            if default is not None and default not in symbols:
                raise SchemaError(f"{where}: enum default {default!r} is not one of the symbols")
            named.enum_default = default
        else:
            size = node.get("size")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise SchemaError(f"{where}: fixed {full} needs a non-negative integer size")
            named.size = size
        return named
    if kind == "array":
        if "items" not in node:
            raise SchemaError(f"{where}: array needs items")
        return _Array(_parse(node["items"], namespace, names, f"{where}[]"))
    if kind == "map":
        if "values" not in node:
            raise SchemaError(f"{where}: map needs values")
        return _Map(_parse(node["values"], namespace, names, f"{where}{{}}"))
    if isinstance(kind, dict | list):
        return _parse(kind, namespace, names, where)
    if isinstance(kind, str):
        return _parse(kind, namespace, names, where)
    raise SchemaError(f"{where}: object without a valid 'type'")


def _default_fits(schema: Any, value: Any) -> bool:
    """Whether a JSON default value is valid for a schema (Avro spec: a union's default is its first branch)."""
    if isinstance(schema, _Union):
        return bool(schema.branches) and _default_fits(schema.branches[0], value)
    if isinstance(schema, str):
        if schema == "null":
            return value is None
        if schema == "boolean":
            return isinstance(value, bool)
        if schema in ("int", "long"):
            return isinstance(value, int) and not isinstance(value, bool)
        if schema in ("float", "double"):
            return isinstance(value, int | float) and not isinstance(value, bool)
        return isinstance(value, str)  # bytes and string defaults are JSON strings
    if isinstance(schema, _Array):
        return isinstance(value, list) and all(_default_fits(schema.items, v) for v in value)
    if isinstance(schema, _Map):
        return isinstance(value, dict) and all(_default_fits(schema.values, v) for v in value.values())
    if schema.kind == "enum":
        return value in schema.symbols
    if schema.kind == "fixed":
        return isinstance(value, str) and len(value) == schema.size
    if not isinstance(value, dict) or schema.fields is None:
        return False
    return all(_default_fits(f.type, value[f.name]) if f.name in value else f.has_default for f in schema.fields)


def parse(schema: Any) -> Any:
    """Validate a schema (JSON value or text) and resolve its named types; raises :class:`SchemaError`."""
    if isinstance(schema, str) and schema.strip() in PRIMITIVES:
        return schema.strip()  # a bare primitive name ("null" is not JSON null here)
    if isinstance(schema, str | bytes):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise SchemaError(f"not JSON: {exc}") from None
    return _parse(schema, None, {}, "$")


def _describe(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, _Named):
        return f"{schema.kind} {schema.fullname}"
    if isinstance(schema, _Array):
        return f"array<{_describe(schema.items)}>"
    if isinstance(schema, _Map):
        return f"map<{_describe(schema.values)}>"
    return "union[" + ", ".join(_describe(b) for b in schema.branches) + "]"


# --- resolution -----------------------------------------------------------------------------------------


def _names_match(reader: _Named, writer: _Named) -> bool:
    return (
        reader.name == writer.name
        or writer.fullname in reader.aliases
        or writer.name in {a.rsplit(".", 1)[-1] for a in reader.aliases}
    )


def _resolve(reader: Any, writer: Any, path: str, seen: set[tuple[int, int]]) -> list[Incompatibility]:
    if isinstance(writer, _Union):
        problems: list[Incompatibility] = []
        for branch in writer.branches:
            found = _resolve(reader, branch, path, seen)
            if found and not isinstance(reader, _Union):
                problems.extend(found)
            elif found:
                problems.append(
                    Incompatibility(
                        MISSING_UNION_BRANCH,
                        path,
                        f"the writer's union branch {_describe(branch)} has no matching branch in the reader's "
                        f"{_describe(reader)}",
                    )
                )
        return problems
    if isinstance(reader, _Union):
        for branch in reader.branches:
            if not _resolve(branch, writer, path, seen):
                return []
        return [
            Incompatibility(
                MISSING_UNION_BRANCH,
                path,
                f"the reader's {_describe(reader)} has no branch that reads the writer's {_describe(writer)}",
            )
        ]
    if isinstance(reader, str) and isinstance(writer, str):
        if reader == writer or reader in PROMOTIONS.get(writer, ()):
            return []
        return [Incompatibility(TYPE_MISMATCH, path, f"reader expects {reader} but the writer wrote {writer}")]
    if isinstance(reader, _Array) and isinstance(writer, _Array):
        return _resolve(reader.items, writer.items, f"{path}[]", seen)
    if isinstance(reader, _Map) and isinstance(writer, _Map):
        return _resolve(reader.values, writer.values, f"{path}{{}}", seen)
    if isinstance(reader, _Named) and isinstance(writer, _Named) and reader.kind == writer.kind:
        if not _names_match(reader, writer):
            return [
                Incompatibility(
                    NAME_MISMATCH,
                    path,
                    f"reader {reader.kind} is named {reader.fullname} but the writer's is {writer.fullname} "
                    "(rename with an alias)",
                )
            ]
        key = (id(reader), id(writer))
        if key in seen:  # a recursive type already being compared further up
            return []
        seen.add(key)
        try:
            return _resolve_named(reader, writer, path, seen)
        finally:
            seen.discard(key)
    return [
        Incompatibility(
            TYPE_MISMATCH, path, f"reader expects {_describe(reader)} but the writer wrote {_describe(writer)}"
        )
    ]


def _resolve_named(reader: _Named, writer: _Named, path: str, seen: set[tuple[int, int]]) -> list[Incompatibility]:
    if reader.kind == "fixed":
        if reader.size != writer.size:
            return [
                Incompatibility(
                    FIXED_SIZE_MISMATCH,
                    path,
                    f"fixed {reader.fullname} has size {reader.size} in the reader, {writer.size} in the writer",
                )
            ]
        return []
    if reader.kind == "enum":
        missing = [s for s in writer.symbols if s not in reader.symbols]
        if missing and reader.enum_default is None:
            return [
                Incompatibility(
                    MISSING_ENUM_SYMBOLS,
                    path,
                    f"enum {reader.fullname} lacks the writer's symbol(s) {', '.join(missing)} and has no default",
                )
            ]
        return []
    return _resolve_record(reader, writer, path, seen)


def _resolve_record(reader: _Named, writer: _Named, path: str, seen: set[tuple[int, int]]) -> list[Incompatibility]:
    problems: list[Incompatibility] = []
    by_name = {f.name: f for f in writer.fields or []}
    for field in reader.fields or []:
        written = by_name.get(field.name)
        if written is None:
            written = next((by_name[a] for a in sorted(field.aliases) if a in by_name), None)
        fpath = f"{path}.{field.name}"
        if written is None:
            if not field.has_default:
                problems.append(
                    Incompatibility(
                        READER_FIELD_MISSING_DEFAULT_VALUE,
                        fpath,
                        f"field {field.name!r} is not in the writer's {writer.fullname} and has no default",
                    )
                )
            continue
        problems.extend(_resolve(field.type, written.type, fpath, seen))
    return problems


def can_read(reader: Any, writer: Any) -> list[Incompatibility]:
    """Why data written with ``writer`` cannot be read with ``reader``; empty when it can.

    Both are schemas as JSON values, text, or the result of :func:`parse`.
    """
    r = reader if isinstance(reader, _Named | _Array | _Map | _Union) else parse(reader)
    w = writer if isinstance(writer, _Named | _Array | _Map | _Union) else parse(writer)
    root = r.name if isinstance(r, _Named) else "$"
    return _resolve(r, w, root, set())


def check(new: Any, previous: list[Any], level: str) -> list[str]:
    """Incompatibilities of ``new`` with ``previous`` versions (oldest first) under a compatibility level.

    Each message names the direction and the previous version it is checked against (1-based position in
    ``previous``).
    """
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"unknown compatibility level {level!r}; use one of {', '.join(LEVELS)}")
    if level == "NONE" or not previous:
        return []
    targets = list(enumerate(previous, 1)) if level.endswith("_TRANSITIVE") else [(len(previous), previous[-1])]
    base = level.removesuffix("_TRANSITIVE")
    parsed_new = parse(new)
    messages: list[str] = []
    for position, old in targets:
        parsed_old = parse(old)
        if base in ("BACKWARD", "FULL"):
            messages += [f"new schema cannot read version {position}: {p}" for p in can_read(parsed_new, parsed_old)]
        if base in ("FORWARD", "FULL"):
            messages += [
                f"version {position} cannot read the new schema: {p}" for p in can_read(parsed_old, parsed_new)
            ]
    return messages


def normalize(schema: Any, namespace: str | None = None) -> Any:
    """A schema's JSON with every name fully qualified, ``namespace`` attributes folded into the names and
    ``{"type": "int"}`` written as ``"int"``: two texts of one schema normalize to equal values.

    Docs, defaults, aliases and other attributes are kept. ``schema`` must be valid (see :func:`parse`).
    """
    if isinstance(schema, str):
        return schema if schema in PRIMITIVES else _fullname(schema, namespace)
    if isinstance(schema, list):
        return [normalize(branch, namespace) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if isinstance(kind, dict | list) or (isinstance(kind, str) and kind not in ("record", "error", "enum", "fixed")):
        if kind == "array":
            return {**schema, "items": normalize(schema["items"], namespace)}
        if kind == "map":
            return {**schema, "values": normalize(schema["values"], namespace)}
        if isinstance(kind, str) and len(schema) == 1:
            return normalize(kind, namespace)
        if isinstance(kind, dict | list):
            return {**schema, "type": normalize(kind, namespace)}
        return dict(schema)
    name = schema["name"]
    ns = name.rsplit(".", 1)[0] if "." in name else (schema.get("namespace", namespace) or None)
    out = {k: v for k, v in schema.items() if k != "namespace"}
    out["name"] = _fullname(name, ns)
    if "aliases" in schema:
        out["aliases"] = [_fullname(a, ns) for a in schema["aliases"]]
    if "fields" in schema:
        out["fields"] = [{**f, "type": normalize(f["type"], ns)} for f in schema["fields"]]
    return out


def schema_key(schema: Any) -> str:
    """Identity of a schema in a registry: equal for texts that differ only in layout, key order or how
    names are qualified."""
    return json.dumps(normalize(schema), sort_keys=True, separators=(",", ":"))

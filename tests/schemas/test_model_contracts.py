"""Each pydantic model matches its .avsc field by field, so the two cannot drift apart."""

from __future__ import annotations

import json
import types
import typing
from datetime import datetime
from enum import Enum
from typing import Any

import annotated_types
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticUndefined

from schemas.models import Record
from schemas.serde import AVRO_DIR
from schemas.topics import TOPICS

AVRO_TO_PYTHON: dict[str, type] = {
    "string": str,
    "long": int,
    "int": int,
    "double": float,
    "float": float,
    "boolean": bool,
}


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        assert len(rest) == 1
        return rest[0], True
    return annotation, False


def _unwrap(annotation: Any) -> Any:
    """Annotated[X, ...] -> X."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _check_type(avro: Any, annotation: Any, where: str) -> None:
    annotation = _unwrap(annotation)
    if isinstance(avro, dict) and avro.get("logicalType") == "timestamp-millis":
        assert annotation is datetime, f"{where}: timestamp-millis needs a datetime, model has {annotation}"
        return
    if isinstance(avro, dict) and avro["type"] in AVRO_TO_PYTHON:
        avro = avro["type"]
    if isinstance(avro, str):
        assert annotation is AVRO_TO_PYTHON[avro], f"{where}: Avro {avro} but model has {annotation}"
        return
    kind = avro["type"]
    if kind == "enum":
        assert isinstance(annotation, type) and issubclass(annotation, Enum), f"{where}: enum needs an Enum"
        assert [m.value for m in annotation] == avro["symbols"], f"{where}: enum symbols differ"
    elif kind == "array":
        assert typing.get_origin(annotation) is tuple, f"{where}: array needs tuple[...]"
        _check_type(avro["items"], typing.get_args(annotation)[0], f"{where}[]")
    elif kind == "map":
        assert typing.get_origin(annotation) is dict, f"{where}: map needs dict[str, ...]"
        key, value = typing.get_args(annotation)
        assert key is str
        _check_type(avro["values"], value, f"{where}{{}}")
    elif kind == "record":
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel), f"{where}: record needs a model"
        _check_record(avro, annotation, where)
    else:
        pytest.fail(f"{where}: unexpected Avro type {avro}")


def _default_of(info: Any) -> Any:
    if info.default_factory is not None:
        return info.default_factory()
    return info.default


def _as_json(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def _check_record(avro: dict[str, Any], model: type[BaseModel], where: str) -> None:
    avro_fields = {f["name"]: f for f in avro["fields"]}
    assert list(avro_fields) == list(model.model_fields), f"{where}: field names or order differ"
    for name, spec in avro_fields.items():
        info = model.model_fields[name]
        avro_type = spec["type"]
        nullable = isinstance(avro_type, list) and "null" in avro_type
        annotation, optional = _strip_optional(info.annotation)
        assert nullable == optional, f"{where}.{name}: Avro nullable={nullable}, model optional={optional}"
        if nullable:
            assert avro_type[0] == "null" and len(avro_type) == 2, f"{where}.{name}: use [null, T]"
            avro_type = avro_type[1]
        has_default = "default" in spec
        assert has_default == (not info.is_required()), f"{where}.{name}: default in Avro={has_default}"
        if has_default:
            model_default = _default_of(info)
            assert model_default is not PydanticUndefined
            assert _as_json(model_default) == spec["default"], f"{where}.{name}: defaults differ"
        _check_type(avro_type, annotation, f"{where}.{name}")
        _check_range(avro_type, info, f"{where}.{name}")


# Values each Avro number type must accept and refuse (JSON gives Python ints of any size, bools and NaN).
AVRO_RANGES: dict[str, tuple[list[Any], list[Any]]] = {
    "long": ([-(2**63), 2**63 - 1], [2**63, -(2**63) - 1, 2**70, True, "5", 1.5]),
    "int": ([2**31 - 1], [2**31, 2**63 - 1, True, "5"]),
    "double": ([0.5, -1e300], [float("nan"), float("inf"), float("-inf"), True, "0.5"]),
}


def _check_range(avro: Any, info: Any, where: str) -> None:
    """The model refuses what the Avro type cannot hold (fastavro would fail at encode time)."""
    if isinstance(avro, dict) and "logicalType" not in avro:
        avro = avro["type"]
    if not isinstance(avro, str) or avro not in AVRO_RANGES:
        return
    adapter = TypeAdapter(info.rebuild_annotation())
    good, bad = AVRO_RANGES[avro]
    lower = next((m.ge for m in info.metadata if isinstance(m, annotated_types.Ge) and m.ge >= 0), None)
    for value in good:
        if lower is None or value >= lower:
            assert _accepts(adapter, value), f"{where}: Avro {avro} field refuses {value!r}"
    for value in bad:
        assert not _accepts(adapter, value), f"{where}: Avro {avro} field accepts {value!r}"


def _accepts(adapter: TypeAdapter[Any], value: Any) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_model_matches_its_avro_schema(topic: str) -> None:
    model: type[Record] = TOPICS[topic].model
    avsc = json.loads((AVRO_DIR / f"{model.avro_name}.avsc").read_text())
    assert avsc["name"] == model.__name__
    _check_record(avsc, model, model.__name__)


def test_the_check_catches_drift() -> None:
    """A field renamed, made optional, or given another type in the .avsc fails the comparison."""
    from schemas.models import CameraCount

    avsc = json.loads((AVRO_DIR / "camera_count.avsc").read_text())
    mutations = [
        lambda s: s["fields"][0].update(name="cam_id"),
        lambda s: s["fields"][0].update(type=["null", "string"], default=None),
        lambda s: s["fields"][4].update(type="string"),
        lambda s: s["fields"].pop(),
        lambda s: s["fields"][5].update(type="long"),  # people_in_frame: the model's int range is too narrow
    ]
    for mutate in mutations:
        changed = json.loads(json.dumps(avsc))
        mutate(changed)
        with pytest.raises(AssertionError):
            _check_record(changed, CameraCount, "CameraCount")

"""The one file loader and ValidationError formatter (tillflow/documents.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from tillflow.documents import load_document, validation_reason
from tillflow.errors import ConfigError, TillflowError


class Line(BaseModel):
    sku: str
    quantity: float


class Doc(BaseModel):
    name: str
    lines: list[Line] = []

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.islower():
            raise ValueError(f"name must be lower case, got {value!r}")
        return value


class SpecError(ConfigError):
    pass


def test_validation_reason_is_one_line_with_key_paths_and_no_pydantic_prefix() -> None:
    with pytest.raises(ValidationError) as info:
        Doc.model_validate({"name": "Shop", "lines": [{"sku": "a", "quantity": 1}, {"sku": "b", "quantity": "x"}]})
    assert validation_reason(info.value) == (
        "name: name must be lower case, got 'Shop'; lines[1].quantity: Input should be a valid number, "
        "unable to parse string as a number"
    )


def test_a_whole_object_problem_is_named_by_top() -> None:
    with pytest.raises(ValidationError) as info:
        Line.model_validate("not an object")
    assert validation_reason(info.value, top="(record)").startswith("(record): Input should be")


@pytest.mark.parametrize("suffix", [".yaml", ".toml"])
def test_load_document_reads_yaml_and_toml(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"doc{suffix}"
    path.write_text('name: "shop"\n' if suffix == ".yaml" else 'name = "shop"\n')
    assert load_document(path, Doc) == Doc(name="shop")


def test_load_document_errors_name_the_file_and_the_reason(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match=f"{missing}: cannot read"):
        load_document(missing, Doc)
    bad = tmp_path / "bad.toml"
    bad.write_text("name = ")
    with pytest.raises(ConfigError, match=f"{bad}: not valid TOML"):
        load_document(bad, Doc)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n")
    with pytest.raises(SpecError, match=r"list.yaml: \(top level\): expected a mapping with a name"):
        load_document(listed, Doc, SpecError, "a name")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("name: Shop\nlines: [{sku: a}]\n")
    with pytest.raises(TillflowError) as info:
        load_document(wrong, Doc)
    assert str(info.value).splitlines() == [
        f"{wrong}: name: name must be lower case, got 'Shop'",
        f"{wrong}: lines[0].quantity: Field required",
    ]

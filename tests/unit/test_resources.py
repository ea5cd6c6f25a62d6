"""The resource accessor reads JSON data files and checks them against their schema."""

from __future__ import annotations

import json
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from ketadesk.core.errors import UserFacingError
from ketadesk.resources import (
    ResourceFileError,
    load_resource_json,
    load_validated_json,
    read_json_file,
    read_validated_json,
    resource_schema_validator,
    resources_dir,
)

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["format", "counties"],
    "properties": {
        "format": {"const": "synthetic-test"},
        "counties": {"type": "array", "items": {"type": "string", "minLength": 1}},
    },
}
GOOD = {"format": "synthetic-test", "counties": ["Alachua", "Baker"]}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "things.schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    (tmp_path / "things.json").write_text(json.dumps(GOOD), encoding="utf-8")
    return tmp_path


@pytest.fixture
def bundle(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Serve ``folder`` as the resources folder of a (pretend) PyInstaller bundle."""
    (folder / "resources").mkdir()
    for name in ("things.json", "things.schema.json"):
        (folder / name).rename(folder / "resources" / name)
    monkeypatch.setattr(sys, "_MEIPASS", str(folder), raising=False)
    resource_schema_validator.cache_clear()
    yield folder / "resources"
    resource_schema_validator.cache_clear()


def test_good_file_is_returned_as_parsed(folder: Path) -> None:
    assert read_validated_json(folder / "things.json", folder / "things.schema.json") == GOOD


def test_missing_file_is_named(folder: Path) -> None:
    (folder / "things.json").unlink()
    with pytest.raises(ResourceFileError) as caught:
        read_validated_json(folder / "things.json", folder / "things.schema.json")
    assert caught.value.problem == "missing"
    assert str(caught.value) == "The data file things.json is missing."
    assert isinstance(caught.value, UserFacingError)


def test_missing_schema_is_named(folder: Path) -> None:
    (folder / "things.schema.json").unlink()
    with pytest.raises(ResourceFileError, match=r"things\.schema\.json is missing"):
        read_validated_json(folder / "things.json", folder / "things.schema.json")


def test_malformed_json_gives_line_and_column(folder: Path) -> None:
    (folder / "things.json").write_text('{\n  "format": oops\n}', encoding="utf-8")
    with pytest.raises(ResourceFileError) as caught:
        read_validated_json(folder / "things.json", folder / "things.schema.json")
    error = caught.value
    assert (error.problem, error.line, error.column) == ("not_json", 2, 13)
    assert str(error) == "The data file things.json is not valid JSON (line 2, column 13)."


def test_text_that_is_not_utf8_is_reported_plainly(folder: Path) -> None:
    (folder / "things.json").write_bytes(b'{"format": "\xff\xfe"}')
    with pytest.raises(ResourceFileError, match=r"things\.json is not UTF-8 text") as caught:
        read_json_file(folder / "things.json")
    assert caught.value.line is None


def test_schema_failure_names_the_place_and_the_problem(folder: Path) -> None:
    bad = {"format": "synthetic-test", "counties": ["Alachua", ""]}
    (folder / "things.json").write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(ResourceFileError) as caught:
        read_validated_json(folder / "things.json", folder / "things.schema.json")
    error = caught.value
    assert error.problem == "invalid"
    assert error.location == ("counties", 1) and error.where == "counties/1"
    assert str(error) == (
        "The data file things.json does not match its schema at counties/1: "
        "'' should be non-empty"
    )


def test_schema_failure_at_the_top_level_says_so(folder: Path) -> None:
    (folder / "things.json").write_text("[]", encoding="utf-8")
    with pytest.raises(ResourceFileError, match=r"at the top level: .* is not of type 'object'"):
        read_validated_json(folder / "things.json", folder / "things.schema.json")


def test_the_error_survives_a_process_boundary(folder: Path) -> None:
    (folder / "things.json").write_text('{"format": "synthetic-test", "counties": [1]}', "utf-8")
    with pytest.raises(ResourceFileError) as caught:
        read_validated_json(folder / "things.json", folder / "things.schema.json")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is ResourceFileError
    assert str(copy) == str(caught.value)
    assert (copy.problem, copy.location, copy.detail) == ("invalid", ("counties", 0),
                                                          caught.value.detail)


def test_bundle_resources_load_and_validate(bundle: Path) -> None:
    assert resources_dir() == bundle
    assert load_validated_json("things.json", schema="things.schema.json") == GOOD
    assert load_validated_json("things.json", schema=("things.schema.json",)) == GOOD
    assert load_resource_json("things.json") == GOOD


def test_bundle_resource_errors_name_the_path_under_resources(bundle: Path) -> None:
    (bundle / "sub").mkdir()
    (bundle / "sub" / "bad.json").write_text('{"format": "other", "counties": []}', "utf-8")
    with pytest.raises(ResourceFileError, match=r"sub/bad\.json does not match .* at format"):
        load_validated_json("sub", "bad.json", schema=("things.schema.json",))
    with pytest.raises(ResourceFileError, match=r"^The data file sub/none\.json is missing\.$"):
        load_resource_json("sub", "none.json")


def test_schema_validator_is_compiled_once_and_checked(bundle: Path) -> None:
    first = resource_schema_validator("things.schema.json")
    assert resource_schema_validator("things.schema.json") is first
    broken = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "nonsense"}
    (bundle / "broken.schema.json").write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(ResourceFileError, match=r"broken\.schema\.json does not match"):
        resource_schema_validator("broken.schema.json")


def test_every_shipped_schema_is_a_valid_json_schema() -> None:
    # Loaders that are not cached skip this check for speed, so it is made here instead.
    schemas = sorted(resources_dir().rglob("*.schema.json"))
    assert len(schemas) >= 9
    for path in schemas:
        schema = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.validators.validator_for(schema).check_schema(schema)

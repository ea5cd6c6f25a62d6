"""Protocol templates: built-in examples, export/import with schema, clear errors."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import jsonschema
import pytest

from ketadesk.core.errors import UserFacingError
from ketadesk.core.practice_limits import default_practice_limits
from ketadesk.core.protocol_serialization import protocol_to_dict
from ketadesk.core.protocol_templates import (
    MAX_TEMPLATE_FILE_BYTES,
    builtin_templates,
    confirm_template,
    export_templates,
    find_template,
    import_templates,
    templates_to_data,
)
from ketadesk.core.protocol_validation import blocks_signing, validate_protocol
from ketadesk.core.protocols import ProtocolKind, Route, WeightReading
from ketadesk.resources import resource_path

TODAY = date(2026, 11, 25)


def test_builtin_templates_are_the_three_named_examples() -> None:
    templates = builtin_templates()
    assert [t.name for t in templates] == [
        "Microdose, sublingual",
        "Standard dose, sublingual RDT",
        "Intranasal",
    ]
    assert all(t.built_in and t.example_values for t in templates)
    assert all("EXAMPLE VALUES" in t.description for t in templates)
    routes = {t.name: t.protocol.route for t in templates}
    assert routes["Intranasal"] is Route.INTRANASAL
    assert find_template("microdose, sublingual", templates).protocol.kind is (
        ProtocolKind.MICRODOSE
    )


def test_every_builtin_template_cites_public_sources() -> None:
    for template in builtin_templates():
        assert template.sources
        assert all(s.url.startswith("https://") and s.note for s in template.sources)


def test_builtin_templates_file_matches_schema() -> None:
    schema = json.loads(resource_path("protocols", "template.schema.json").read_text("utf-8"))
    data = json.loads(resource_path("protocols", "templates.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(data, schema)


def test_example_values_block_signing_until_the_practice_confirms() -> None:
    template = builtin_templates()[0]
    weight = WeightReading(70, TODAY)
    messages = validate_protocol(template.protocol, default_practice_limits(), weight, TODAY)
    assert "example_values" in [m.code for m in messages]
    confirmed = confirm_template(template, "Our microdose plan")
    assert confirmed.name == "Our microdose plan"
    assert not confirmed.built_in and not confirmed.example_values
    again = validate_protocol(confirmed.protocol, default_practice_limits(), weight, TODAY)
    assert "example_values" not in [m.code for m in again]
    assert blocks_signing(again)  # the shipped limits are still empty


def test_export_then_import_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "templates.json"
    practice = [confirm_template(t, f"{t.name} (ours)") for t in builtin_templates()]
    export_templates(practice, path)
    imported = import_templates(path)
    assert [t.name for t in imported] == [t.name for t in practice]
    assert [t.protocol for t in imported] == [t.protocol for t in practice]
    assert [t.sources for t in imported] == [t.sources for t in practice]
    assert not any(t.built_in for t in imported)
    assert not (tmp_path / "templates.json.tmp").exists()


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "shared.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _valid_data() -> dict[str, object]:
    return templates_to_data([confirm_template(builtin_templates()[1], "Shared plan")])


def test_not_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"format": \n oops}', encoding="utf-8")
    with pytest.raises(UserFacingError, match=r"broken\.json is not valid JSON \(line 2"):
        import_templates(path)


def test_wrong_kind_of_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserFacingError, match="not a valid KetaDesk template file"):
        import_templates(_write(tmp_path, {"format": "something-else", "templates": []}))
    with pytest.raises(UserFacingError, match="not a valid KetaDesk template file"):
        import_templates(_write(tmp_path, [1, 2, 3]))


def test_invalid_value_is_located_in_the_message(tmp_path: Path) -> None:
    data = _valid_data()
    data["templates"][0]["protocol"]["ladder"]["start_dose_mg"] = -10  # type: ignore[index]
    with pytest.raises(UserFacingError) as caught:
        import_templates(_write(tmp_path, data))
    assert "template 1 > protocol > ladder > start_dose_mg" in caught.value.message
    assert "-10" in caught.value.message


def test_unknown_route_and_missing_field(tmp_path: Path) -> None:
    data = _valid_data()
    data["templates"][0]["protocol"]["route"] = "intravenous"  # type: ignore[index]
    with pytest.raises(UserFacingError, match="protocol > route"):
        import_templates(_write(tmp_path, data))
    data = _valid_data()
    del data["templates"][0]["protocol"]["frequency"]  # type: ignore[index]
    with pytest.raises(UserFacingError, match="'frequency' is a required property"):
        import_templates(_write(tmp_path, data))


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    data = _valid_data()
    data["templates"].append(dict(data["templates"][0]))  # type: ignore[attr-defined,index]
    data["templates"][1]["name"] = " shared PLAN "  # type: ignore[index]
    with pytest.raises(UserFacingError, match="names \"shared PLAN\" twice"):
        import_templates(_write(tmp_path, data))


def test_missing_binary_and_oversized_files(tmp_path: Path) -> None:
    with pytest.raises(UserFacingError, match=r"Cannot read the template file nope\.json"):
        import_templates(tmp_path / "nope.json")
    binary = tmp_path / "photo.json"
    binary.write_bytes(b"\xff\xd8\xff\xe0binary")
    with pytest.raises(UserFacingError, match="not a text"):
        import_templates(binary)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (MAX_TEMPLATE_FILE_BYTES + 1))
    with pytest.raises(UserFacingError, match="too large"):
        import_templates(big)


def test_unknown_template_lists_the_known_names() -> None:
    with pytest.raises(UserFacingError) as caught:
        find_template("Weekly", builtin_templates())
    assert caught.value.message == (
        'There is no template called "Weekly". Templates: Microdose, sublingual; '
        "Standard dose, sublingual RDT; Intranasal."
    )


def test_exported_protocol_is_the_stored_dict_form(tmp_path: Path) -> None:
    template = confirm_template(builtin_templates()[2])
    template = replace(template, protocol=replace(template.protocol, review_date=TODAY))
    path = tmp_path / "one.json"
    export_templates([template], path)
    data = json.loads(path.read_text("utf-8"))
    assert data["templates"][0]["protocol"] == protocol_to_dict(template.protocol)

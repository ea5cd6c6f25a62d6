"""Validated fhir.resources models written as FHIR JSON, quickly.

The library's own ``model_dump_json`` walks every element in Python with FHIR-specific hooks,
which costs more than building and validating the models; a 50,000-patient export spent two
thirds of its time there. KetaDesk's exports set no primitive extensions (``_field``) and no
comments, so the walk below (set fields in declaration order, JSON names, nothing empty) gives
the same document; a test compares it with the library's output for a whole demo practice.
Only models that passed the library's validation when they were built reach it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from fhir.resources.R4B.resource import Resource
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic_core import to_json

_Model = TypeVar("_Model", bound=FHIRAbstractModel)
# Per model class: its resource type (None for an element) and the JSON names of its written
# fields.
_KINDS: dict[type, tuple[str | None, dict[str, str]]] = {}
# JSON data of models built once and shared by many resources (codes, categories, profiles),
# keyed by the model's id: ``shared`` keeps each model alive for the life of the process.
_SHARED: dict[int, tuple[FHIRAbstractModel, dict[str, Any]]] = {}


def shared(model: _Model) -> _Model:
    """Mark a model that is never changed and appears in many resources: its JSON data is
    worked out once. Returns the model."""
    _SHARED[id(model)] = (model, fhir_dict(model))
    return model


def _kind(kind: type) -> tuple[str | None, dict[str, str]]:
    """A model class's resource type and written fields (worked out once per class)."""
    found = _KINDS.get(kind)
    if found is None:
        aliases = {
            name: info.alias or name
            for name, info in kind.model_fields.items()  # type: ignore[attr-defined]
            if name != "fhir_comments" and not name.endswith("__ext")
        }
        resource_type = kind.get_resource_type() if issubclass(kind, Resource) else None
        found = (resource_type, aliases)
        _KINDS[kind] = found
    return found


def _instant(value: datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _decimal(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() and "." not in str(value) else (
        float(value)
    )


# Values other than text, lists and models, by their exact type (bool, int and float are
# written as they are).
_CONVERT: dict[type, Any] = {datetime: _instant, date: date.isoformat, Decimal: _decimal}


def _plain(value: Any, seen: dict[int, Any]) -> Any:
    kind = type(value)
    if kind is str:
        return value
    if kind is list:
        items = [_plain(item, seen) for item in value if item is not None]
        return items or None
    convert = _CONVERT.get(kind)
    if convert is not None:
        return convert(value)
    if kind in _KINDS or isinstance(value, FHIRAbstractModel):
        # A model met again in the same document (a bundle's patient reference appears in
        # each of its resources) is worked out once; the models live as long as the walk,
        # so their ids stay theirs.
        key = id(value)
        data = seen.get(key)
        if data is None:
            known = _SHARED.get(key)
            data = known[1] if known is not None else _fhir_dict(value, seen)
            seen[key] = data
        return data
    if isinstance(value, datetime):  # a subclass of datetime or date (not met so far)
        return _instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return _decimal(value)
    return value


def fhir_dict(model: FHIRAbstractModel) -> dict[str, Any]:
    """The model as FHIR JSON data: JSON element names, empty elements left out."""
    return _fhir_dict(model, {})


def _fhir_dict(model: FHIRAbstractModel, seen: dict[int, Any]) -> dict[str, Any]:
    resource_type, aliases = _kind(type(model))
    out: dict[str, Any] = {} if resource_type is None else {"resourceType": resource_type}
    # A validated model holds every field of its class, in declaration order (FHIR's order);
    # an element not given is None (FHIR elements have no defaults).
    for name, value in model.__dict__.items():
        if value is None:
            continue
        alias = aliases.get(name)
        if alias is None:  # fhir_comments and the primitive extensions, never set here
            continue
        if type(value) is str:
            out[alias] = value
            continue
        plain = _plain(value, seen)
        if plain is not None and plain != {}:
            out[alias] = plain
    return out


def fhir_json_bytes(model: FHIRAbstractModel) -> bytes:
    """Compact UTF-8 FHIR JSON of a validated model.

    Encoded by pydantic-core (the library's own JSON engine, in Rust): the same bytes as
    ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` for these documents, in a
    quarter of the time.
    """
    return to_json(fhir_dict(model))

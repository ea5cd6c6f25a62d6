"""Protocol templates: the built-in examples and the practice's own, shared as JSON files.

Built-in templates live in ``resources/protocols/templates.json``; every value in them is an
example (``example_values: true``) that validation refuses to sign until someone confirms it.
Template files (built-in or exported by a practice) are checked against
``resources/protocols/template.schema.json``; a file that does not match raises UserFacingError
naming the first problem.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ketadesk.core.errors import UserFacingError
from ketadesk.core.protocol_serialization import protocol_from_dict, protocol_to_dict
from ketadesk.core.protocols import Protocol
from ketadesk.resources import load_resource_json, resource_schema_validator

if TYPE_CHECKING:  # jsonschema loads only when a file is validated (ketadesk.resources)
    import jsonschema

TEMPLATES_FORMAT = "ketadesk-protocol-templates"
TEMPLATES_FORMAT_VERSION = 1
#: Template files larger than this are refused before parsing (bytes).
MAX_TEMPLATE_FILE_BYTES = 2_000_000


@dataclass(frozen=True)
class TemplateSource:
    """A public source behind a template's content (title, link, what it supports)."""

    title: str
    url: str = ""
    note: str = ""


@dataclass(frozen=True)
class ProtocolTemplate:
    """A named starting point for a protocol. ``built_in`` marks KetaDesk's own examples."""

    name: str
    protocol: Protocol
    description: str = ""
    sources: tuple[TemplateSource, ...] = ()
    built_in: bool = False

    @property
    def example_values(self) -> bool:
        """True while the template's values are unconfirmed examples."""
        return self.protocol.example_values


def confirm_template(template: ProtocolTemplate, new_name: str | None = None) -> ProtocolTemplate:
    """Return a practice copy of ``template`` whose values count as confirmed (not built-in)."""
    return replace(
        template,
        name=new_name if new_name is not None else template.name,
        protocol=replace(template.protocol, example_values=False),
        built_in=False,
    )


def _describe(error: jsonschema.ValidationError) -> str:
    parts: list[str] = []
    for part in error.absolute_path:
        if isinstance(part, int) and parts == ["templates"]:
            parts = [f"template {part + 1}"]
        elif isinstance(part, int):
            parts.append(f"item {part + 1}")
        else:
            parts.append(str(part))
    where = " > ".join(parts) if parts else "the top level"
    return f"{where}: {error.message}"


def templates_from_data(data: Any, *, built_in: bool = False) -> tuple[ProtocolTemplate, ...]:
    """Build templates from the parsed JSON of a template file (schema-checked first).

    Raises UserFacingError naming the first problem, or a repeated template name.
    """
    validator = resource_schema_validator("protocols", "template.schema.json")
    errors = sorted(
        validator.iter_errors(data), key=lambda e: (len(list(e.absolute_path)), str(e.message))
    )
    if errors:
        deepest = max(errors, key=lambda e: len(list(e.absolute_path)))
        raise UserFacingError(f"This is not a valid KetaDesk template file ({_describe(deepest)}).")
    templates: list[ProtocolTemplate] = []
    seen: set[str] = set()
    for entry in data["templates"]:
        name = entry["name"].strip()
        if name.casefold() in seen:
            raise UserFacingError(f"The template file names \"{name}\" twice.")
        seen.add(name.casefold())
        templates.append(
            ProtocolTemplate(
                name=name,
                description=entry.get("description", ""),
                sources=tuple(
                    TemplateSource(s["title"], s.get("url", ""), s.get("note", ""))
                    for s in entry.get("sources", [])
                ),
                protocol=protocol_from_dict(entry["protocol"]),
                built_in=built_in,
            )
        )
    return tuple(templates)


def templates_to_data(templates: Iterable[ProtocolTemplate]) -> dict[str, Any]:
    """Return templates as the JSON-able content of a template file."""
    return {
        "format": TEMPLATES_FORMAT,
        "format_version": TEMPLATES_FORMAT_VERSION,
        "templates": [
            {
                "name": t.name,
                "description": t.description,
                "sources": [_source_data(s) for s in t.sources],
                "protocol": protocol_to_dict(t.protocol),
            }
            for t in templates
        ],
    }


def _source_data(source: TemplateSource) -> dict[str, str]:
    data = {"title": source.title, "note": source.note}
    if source.url:
        data["url"] = source.url
    return data


@lru_cache(maxsize=1)
def builtin_templates() -> tuple[ProtocolTemplate, ...]:
    """Return KetaDesk's built-in templates (values are examples until confirmed)."""
    return templates_from_data(load_resource_json("protocols", "templates.json"), built_in=True)


def find_template(name: str, templates: Sequence[ProtocolTemplate]) -> ProtocolTemplate:
    """Return the template called ``name`` (case and surrounding spaces ignored)."""
    wanted = name.strip().casefold()
    for template in templates:
        if template.name.casefold() == wanted:
            return template
    known = "; ".join(t.name for t in templates) or "none"
    raise UserFacingError(f"There is no template called \"{name.strip()}\". Templates: {known}.")


def export_templates(templates: Iterable[ProtocolTemplate], path: Path) -> None:
    """Write templates to a JSON template file at ``path`` (UTF-8, replacing the file)."""
    text = json.dumps(templates_to_data(templates), indent=2, ensure_ascii=False) + "\n"
    from ketadesk.core.os_errors import os_error_in_words
    from ketadesk.core.private_files import is_regular_or_absent, write_private_bytes

    if not is_regular_or_absent(path):
        raise UserFacingError(f"{path.name} is not an ordinary file; nothing was written.")
    try:
        write_private_bytes(path, text.encode("utf-8"))  # unique 0600 temp file, then rename
    except OSError as error:
        raise UserFacingError(
            f"Could not write the template file {path.name}: {os_error_in_words(error)}."
        ) from None


def import_templates(path: Path) -> tuple[ProtocolTemplate, ...]:
    """Read a JSON template file; a missing, oversized, non-JSON or invalid file raises
    UserFacingError with a message naming the problem. Imported templates are not built-in."""
    from ketadesk.core.json_input import parse_json_capped, read_capped_text

    data = parse_json_capped(
        read_capped_text(path, limit=MAX_TEMPLATE_FILE_BYTES, what="template file"),
        name=path.name,
    )
    return templates_from_data(data, built_in=False)

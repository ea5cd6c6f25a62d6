"""The practice's own protocol templates: list, save, delete, import and export them.

Built-in templates ship with KetaDesk and cannot be replaced or removed; practice templates are
stored in the database and checked against the template schema before they are stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.core.protocol_templates import (
    ProtocolTemplate,
    builtin_templates,
    export_templates,
    import_templates,
    templates_from_data,
    templates_to_data,
)
from ketadesk.models.protocols import PracticeTemplate
from ketadesk.storage.security.audit_log import record_event


def practice_templates(session: Session) -> tuple[ProtocolTemplate, ...]:
    """Return the practice's own templates, by name."""
    rows = session.execute(select(PracticeTemplate).order_by(PracticeTemplate.name_folded))
    entries = [json.loads(r.template_json) for r in rows.scalars()]
    if not entries:
        return ()
    return templates_from_data(_file_data(entries), built_in=False)


def _file_data(entries: list[dict[str, Any]]) -> dict[str, Any]:
    data = templates_to_data(())
    data["templates"] = entries
    return data


def all_templates(session: Session) -> tuple[ProtocolTemplate, ...]:
    """Return the built-in templates followed by the practice's own."""
    return (*builtin_templates(), *practice_templates(session))


def save_template(session: Session, actor: Actor, template: ProtocolTemplate) -> ProtocolTemplate:
    """Add or replace (by name, case ignored) a practice template. Physicians only; a built-in
    template's name cannot be reused."""
    require(actor, Permission.EDIT_CLINICAL, "save protocol templates")
    name = template.name.strip()
    if not name:
        raise UserFacingError("Give the template a name.")
    if len(name) > 200:
        raise UserFacingError("A template name can be at most 200 characters.")
    if any(t.name.casefold() == name.casefold() for t in builtin_templates()):
        raise UserFacingError(f'"{name}" is the name of a built-in template; choose another name.')
    entry = templates_to_data([_renamed(template, name)])["templates"][0]
    stored = templates_from_data(_file_data([entry]))[0]  # schema check before storing
    row = session.execute(
        select(PracticeTemplate).where(PracticeTemplate.name_folded == name.casefold())
    ).scalar_one_or_none()
    if row is None:
        row = PracticeTemplate(
            name=name, name_folded=name.casefold(), template_json="{}", updated_by=actor.user_name
        )
        session.add(row)
    row.name = name
    row.template_json = json.dumps(entry, ensure_ascii=False)
    row.updated_by = actor.user_name
    session.flush()
    record_event(
        session,
        actor,
        audit_actions.PROTOCOL_TEMPLATE_SAVED,
        detail=f"template {row.id}; example values: {stored.example_values}",
    )
    return stored


def _renamed(template: ProtocolTemplate, name: str) -> ProtocolTemplate:
    from dataclasses import replace

    return replace(template, name=name, built_in=False)


def delete_template(session: Session, actor: Actor, name: str) -> None:
    """Remove a practice template (built-in templates cannot be removed)."""
    require(actor, Permission.EDIT_CLINICAL, "remove protocol templates")
    row = session.execute(
        select(PracticeTemplate).where(PracticeTemplate.name_folded == name.strip().casefold())
    ).scalar_one_or_none()
    if row is None:
        raise UserFacingError(f'There is no practice template called "{name.strip()}".')
    template_id = row.id
    session.execute(delete(PracticeTemplate).where(PracticeTemplate.id == template_id))
    record_event(
        session, actor, audit_actions.PROTOCOL_TEMPLATE_DELETED, detail=f"template {template_id}"
    )


def import_templates_file(
    session: Session, actor: Actor, path: Path
) -> tuple[ProtocolTemplate, ...]:
    """Read a template file and save every template in it as a practice template (a template
    with an existing practice name replaces it). The whole file is refused when any template
    is invalid or reuses a built-in name. Returns the imported templates."""
    require(actor, Permission.EDIT_CLINICAL, "import protocol templates")
    templates = import_templates(path)
    if not templates:
        raise UserFacingError(f"{path.name} holds no templates.")
    builtin_names = {t.name.casefold() for t in builtin_templates()}
    clashes = [t.name for t in templates if t.name.casefold() in builtin_names]
    if clashes:
        raise UserFacingError(
            f'{path.name} uses the built-in template name "{clashes[0]}"; rename it in the '
            "file and import again."
        )
    saved = tuple(save_template(session, actor, t) for t in templates)
    record_event(
        session,
        actor,
        audit_actions.PROTOCOL_TEMPLATES_IMPORTED,
        detail=f"{len(saved)} template(s) imported",
    )
    return saved


def export_templates_file(session: Session, path: Path, names: Iterable[str] | None = None) -> int:
    """Write the practice templates (or only those named) to a JSON template file; returns
    how many were written."""
    templates = practice_templates(session)
    if names is not None:
        wanted = {n.strip().casefold() for n in names}
        templates = tuple(t for t in templates if t.name.casefold() in wanted)
    if not templates:
        raise UserFacingError("There are no practice templates to export.")
    export_templates(templates, path)
    return len(templates)

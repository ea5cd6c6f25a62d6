"""Reading and changing practice settings (stored in the database, audit-logged)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.core.settings import SETTINGS, default_for, validate_setting
from ketadesk.models.practice import PracticeSetting
from ketadesk.storage.security.audit_log import record_event


def get_setting(session: Session, key: str) -> Any:
    row = session.get(PracticeSetting, key)
    if row is None:
        return default_for(key)
    return json.loads(row.value_json)


def set_setting(session: Session, actor: Actor, key: str, value: Any) -> Any:
    """Validate, store and audit one setting change; returns the stored value."""
    spec = SETTINGS.get(key)
    if spec is not None and spec.manage_users_only:
        require(actor, Permission.MANAGE_USERS, f"change '{spec.label}'")
    if spec is not None and spec.physicians_edit:
        require(actor, Permission.EDIT_CLINICAL, f"change '{spec.label}'")
    stored = validate_setting(key, value)
    before = get_setting(session, key)
    row = session.get(PracticeSetting, key)
    if row is None:
        row = PracticeSetting(key=key, value_json="null")
        session.add(row)
    row.value_json = json.dumps(stored)
    row.updated_by = actor.user_name
    record_event(
        session,
        actor,
        audit_actions.SETTING_CHANGED,
        detail=f"{key}: {json.dumps(before)[:80]} -> {json.dumps(stored)[:80]}",
    )
    return stored

"""Reading and changing practice settings (stored in the database, audit-logged).

The settings screen saves the settings it changed over the values it showed
(``set_settings``): one changed on another workstation meanwhile is refused with
``SettingsChangedError`` (who, when, and every setting as stored now), never overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.edit_conflicts import RecordChangedError
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.core.settings import SETTINGS, default_for, validate_setting
from ketadesk.models.practice import PracticeSetting
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.record_authors import full_name_of


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


class SettingsChangedError(RecordChangedError):
    """A setting this save changes was changed elsewhere since the screen showed it;
    ``current`` holds every setting the screen showed, as stored now."""

    def __init__(
        self, current: dict[str, Any], changed_by: str | None, changed_at: datetime
    ) -> None:
        self.current = current
        super().__init__(
            f"{changed_by or 'Someone else'} changed the practice settings while you were "
            "editing them. Nothing you changed was saved yet; compare the two and choose what "
            "to keep.",
            changed_by,
            changed_at,
        )


def set_settings(
    session: Session, actor: Actor, changes: Mapping[str, Any], shown: Mapping[str, Any]
) -> None:
    """Store ``changes`` (key -> value), each through ``set_setting``'s checks and audit, over
    the values the screen showed (``shown``, every setting on it). If one of the changed
    settings is no longer as shown, nothing is stored: SettingsChangedError."""
    moved = []
    for key in changes:
        row = session.get(PracticeSetting, key, with_for_update=True)
        if row is not None and json.loads(row.value_json) != shown.get(key):
            moved.append(row)
    if moved:
        newest = max(moved, key=lambda row: row.updated_at)
        current = {key: get_setting(session, key) for key in shown}
        raise SettingsChangedError(
            current, full_name_of(session, newest.updated_by), newest.updated_at
        )
    for key, value in changes.items():
        set_setting(session, actor, key, value)

"""The failed-attempts state kept inside the encrypted database at each successful unlock, so
deleting or rolling back the file beside the database is noticed and its backoff restored."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from ketadesk.models.practice import PracticeMeta

_META_KEY = "failed_attempts_state"
_VALUE_MAX = 400


def failed_attempts_kept(session: Session) -> dict[str, Any] | None:
    row = session.get(PracticeMeta, _META_KEY)
    if row is None:
        return None
    try:
        value = json.loads(row.value)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def keep_failed_attempts(session: Session, snapshot: dict[str, Any]) -> None:
    row = session.get(PracticeMeta, _META_KEY)
    users = dict(snapshot.get("users") or {})
    text = json.dumps({**snapshot, "users": users}, sort_keys=True)
    # The column holds 400 characters: keep the users nearest to (or in) a backoff.
    by_count = sorted(users, key=lambda name: users[name].get("consecutive", 0))
    while len(text) > _VALUE_MAX and by_count:
        del users[by_count.pop(0)]
        text = json.dumps({**snapshot, "users": users}, sort_keys=True)
    if row is None:
        session.add(PracticeMeta(key=_META_KEY, value=text))
    else:
        row.value = text

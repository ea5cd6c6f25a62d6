"""The practice dose limits: read them (shipped, empty defaults until set) and change them.

Only physicians who manage users change them; the audit detail names the limits that changed
and their numbers, never clinical free text.
"""

from __future__ import annotations

import json
from functools import lru_cache

from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.core.practice_limits import (
    ROUTE_LIMIT_FIELDS,
    PracticeLimits,
    default_practice_limits,
    practice_limits_from_dict,
    practice_limits_to_dict,
)
from ketadesk.core.protocols import (
    number_text,
)
from ketadesk.models.practice import PracticeSetting
from ketadesk.storage.security.audit_log import record_event

#: PracticeSetting key under which the practice limits are stored (JSON of
#: ``practice_limits_to_dict``).
PRACTICE_LIMITS_KEY = "practice_limits"


def get_practice_limits(session: Session) -> PracticeLimits:
    """Return the practice's limits (the shipped, empty defaults until a physician sets them)."""
    row = session.get(PracticeSetting, PRACTICE_LIMITS_KEY)
    if row is None:
        return default_practice_limits()
    return _limits_from_json(row.value_json)


@lru_cache(maxsize=8)
def _limits_from_json(text: str) -> PracticeLimits:
    """Parsed (schema-checked) limits; cached by their stored text, so each save is read once."""
    return practice_limits_from_dict(json.loads(text))


def _limit_changes(before: PracticeLimits, after: PracticeLimits) -> list[str]:
    changes: list[str] = []
    routes = sorted({*before.routes, *after.routes}, key=lambda r: r.value)
    for route in routes:
        old, new = before.for_route(route), after.for_route(route)
        for name in ROUTE_LIMIT_FIELDS:
            a, b = getattr(old, name), getattr(new, name)
            if a.value != b.value:
                changes.append(
                    f"{route.value}.{name} {_num_or_unset(a.value)}->{_num_or_unset(b.value)}"
                )
            elif a.source != b.source:
                changes.append(f"{route.value}.{name} source")
    if before.weight_max_age_days != after.weight_max_age_days:
        changes.append(
            f"weight_max_age_days {_num_or_unset(before.weight_max_age_days.value)}->"
            f"{_num_or_unset(after.weight_max_age_days.value)}"
        )
    return changes


def _num_or_unset(value: float | None) -> str:
    return "unset" if value is None else number_text(value)


def set_practice_limits(session: Session, actor: Actor, limits: PracticeLimits) -> PracticeLimits:
    """Store new practice limits (physicians who manage users only; audited with the names of
    the limits that changed). Every value that is set must carry its source; numbers must be
    more than 0. Returns the limits as stored."""
    if not actor.is_physician:
        raise UserFacingError("Only physicians may change the practice dose limits.", exit_code=3)
    require(actor, Permission.MANAGE_USERS, "change the practice dose limits")
    problems: list[str] = []
    for route, route_limits in limits.routes.items():
        for name, words in ROUTE_LIMIT_FIELDS.items():
            limit = getattr(route_limits, name)
            if limit.value is not None and not limit.value > 0:
                problems.append(
                    f"The {words} for {route.value.replace('_', ' ')} must be more than 0."
                )
            if limit.value is not None and not limit.source.strip():
                problems.append(
                    f"Say where the {words} for {route.value.replace('_', ' ')} "
                    "comes from (its source)."
                )
    age = limits.weight_max_age_days
    if age.value is not None and (age.value < 1 or not age.source.strip()):
        problems.append("The maximum weight age must be at least 1 day and carry its source.")
    if problems:
        raise UserFacingError(" ".join(problems[:3]))
    data = practice_limits_to_dict(limits)
    stored = practice_limits_from_dict(data)  # schema check
    before = get_practice_limits(session)
    row = session.get(PracticeSetting, PRACTICE_LIMITS_KEY)
    if row is None:
        row = PracticeSetting(key=PRACTICE_LIMITS_KEY, value_json="null")
        session.add(row)
    row.value_json = json.dumps(data, ensure_ascii=False)
    row.updated_by = actor.user_name
    changes = _limit_changes(before, stored)
    record_event(
        session,
        actor,
        audit_actions.PRACTICE_LIMITS_CHANGED,
        detail=f"{len(changes)} changed: " + "; ".join(changes) if changes else "no change",
    )
    return stored

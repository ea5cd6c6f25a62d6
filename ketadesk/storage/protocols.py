"""Patient protocols on the chart: drafts, signed versions, discontinuation, practice limits and
practice templates. Every function takes a Session (one per user action) and returns frozen
dataclasses; nothing returned holds a live ORM row.

Rules kept here (not in the UI):

* A signed version is never changed; editing a signed protocol starts a new draft version.
* Only physicians save, sign and discontinue; signing needs no validation error, an
  acknowledgement of every warning, and a current signed interaction review for the patient.
* Practice limits are changed only by physicians who manage users.
* Audit details name versions, hashes and limit names, never clinical free text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.dose_log import DoseRules
from ketadesk.core.errors import UserFacingError
from ketadesk.core.monitoring_due import MonitoringCadence
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.core.practice_limits import (
    ROUTE_LIMIT_FIELDS,
    PracticeLimits,
    default_practice_limits,
    practice_limits_from_dict,
    practice_limits_to_dict,
)
from ketadesk.core.protocol_serialization import (
    protocol_content_hash,
    protocol_diff,
    protocol_from_dict,
    protocol_to_dict,
)
from ketadesk.core.protocol_templates import (
    ProtocolTemplate,
    builtin_templates,
    export_templates,
    import_templates,
    templates_from_data,
    templates_to_data,
)
from ketadesk.core.protocol_validation import (
    ValidationMessage,
    validate_protocol,
)
from ketadesk.core.protocols import (
    Protocol,
    WeightReading,
    highest_dose_mg,
    latest_weight,
    number_text,
)
from ketadesk.models.patients import Patient, VitalSign
from ketadesk.models.practice import PracticeSetting
from ketadesk.models.protocols import PatientProtocol, PracticeTemplate, ProtocolVersion
from ketadesk.storage.audit_log import record_event

#: PracticeSetting key under which the practice limits are stored (JSON of
#: ``practice_limits_to_dict``).
PRACTICE_LIMITS_KEY = "practice_limits"
DISCONTINUE_REASON_MAX = 2000

REVIEW_REQUIRED_TEXT = "A protocol can be signed only over a current, signed interaction review"


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class ProtocolVersionInfo:
    """One version of a patient's protocol, as stored.

    ``weight`` is the chart weight (kg, with its date) the version was saved or signed with;
    mg/kg values shown for this version are computed from it.
    """

    version_id: int
    protocol_id: int
    patient_id: int
    number: int
    status: str  # "draft" | "signed"
    protocol: Protocol
    content_hash: str
    template_name: str
    start_date: date
    weight: WeightReading | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    signed_by: str | None
    signed_by_full_name: str | None
    signed_at: datetime | None
    interaction_review_id: int | None
    acknowledged_warnings: tuple[str, ...]

    @property
    def is_signed(self) -> bool:
        return self.status == "signed"

    @property
    def label(self) -> str:
        """Short words for lists: "Version 2 — signed 2026-11-25 by Dr. A" / "Version 3 — draft"."""
        if self.is_signed and self.signed_at is not None:
            who = self.signed_by_full_name or self.signed_by or "?"
            return f"Version {self.number} — signed {self.signed_at:%Y-%m-%d %H:%M} UTC by {who}"
        return f"Version {self.number} — draft (saved {self.updated_at:%Y-%m-%d %H:%M} UTC)"


@dataclass(frozen=True)
class PatientProtocolInfo:
    """One course of treatment with all its versions (oldest first)."""

    protocol_id: int
    patient_id: int
    status: str  # "active" | "discontinued"
    created_by: str
    created_at: datetime
    discontinued_reason: str | None
    discontinued_by: str | None
    discontinued_at: datetime | None
    versions: tuple[ProtocolVersionInfo, ...]

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def latest(self) -> ProtocolVersionInfo | None:
        return self.versions[-1] if self.versions else None

    @property
    def latest_signed(self) -> ProtocolVersionInfo | None:
        signed = [v for v in self.versions if v.is_signed]
        return signed[-1] if signed else None

    @property
    def draft(self) -> ProtocolVersionInfo | None:
        drafts = [v for v in self.versions if not v.is_signed]
        return drafts[-1] if drafts else None


@dataclass(frozen=True)
class ReviewGate:
    """Whether the interaction review allows signing: ``state`` is "none", "current" or
    "stale"; ``reason`` is the sentence shown when it does not (empty when it does)."""

    state: str
    review_id: int | None
    reason: str

    @property
    def allows_signing(self) -> bool:
        return self.state == "current" and self.review_id is not None


@dataclass(frozen=True)
class SigningCheck:
    """Everything the editor needs to decide whether Sign is allowed, in words."""

    messages: tuple[ValidationMessage, ...]
    weight: WeightReading | None
    review: ReviewGate
    may_sign: bool  # the actor's role allows signing

    @property
    def errors(self) -> tuple[ValidationMessage, ...]:
        return tuple(m for m in self.messages if m.level == "error")

    @property
    def warnings(self) -> tuple[ValidationMessage, ...]:
        return tuple(m for m in self.messages if m.level == "warning")

    def blockers(self, acknowledged: Iterable[str] = ()) -> list[str]:
        """Sentences saying why signing is not possible yet (empty = it is)."""
        reasons: list[str] = []
        if not self.may_sign:
            reasons.append("Only physicians may sign a protocol.")
        if not self.review.allows_signing:
            reasons.append(self.review.reason)
        if self.errors:
            n = len(self.errors)
            reasons.append(f"{n} problem{'s' if n != 1 else ''} must be fixed first.")
        ticked = set(acknowledged)
        n = sum(1 for m in self.warnings if m.code not in ticked)
        if n:
            reasons.append(f"{n} warning{'s' if n != 1 else ''} must be acknowledged.")
        return reasons


# --------------------------------------------------------------------------- reading


def _now() -> datetime:
    return datetime.now(UTC)


def _version_info(row: ProtocolVersion, patient_id: int) -> ProtocolVersionInfo:
    weight = (
        WeightReading(kg=row.weight_kg, measured_on=row.weight_measured_on)
        if row.weight_kg is not None and row.weight_measured_on is not None
        else None
    )
    acknowledged = json.loads(row.acknowledged_warnings_json or "[]")
    return ProtocolVersionInfo(
        version_id=row.id,
        protocol_id=row.protocol_id,
        patient_id=patient_id,
        number=row.number,
        status=row.status,
        protocol=protocol_from_dict(json.loads(row.protocol_json)),
        content_hash=row.content_hash,
        template_name=row.template_name,
        start_date=row.start_date,
        weight=weight,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        signed_by=row.signed_by,
        signed_by_full_name=row.signed_by_full_name,
        signed_at=row.signed_at,
        interaction_review_id=row.interaction_review_id,
        acknowledged_warnings=tuple(str(code) for code in acknowledged),
    )


def _protocol_info(row: PatientProtocol) -> PatientProtocolInfo:
    return PatientProtocolInfo(
        protocol_id=row.id,
        patient_id=row.patient_id,
        status=row.status,
        created_by=row.created_by,
        created_at=row.created_at,
        discontinued_reason=row.discontinued_reason,
        discontinued_by=row.discontinued_by,
        discontinued_at=row.discontinued_at,
        versions=tuple(_version_info(v, row.patient_id) for v in row.versions),
    )


def chart_weight(session: Session, patient_id: int) -> WeightReading | None:
    """Return the patient's most recent recorded weight (kg) and the (UTC) date it was taken."""
    rows = session.execute(
        select(VitalSign.weight_kg, VitalSign.measured_at)
        .where(VitalSign.patient_id == patient_id, VitalSign.weight_kg.is_not(None))
        .order_by(VitalSign.measured_at.desc())
        .limit(5)
    ).all()
    return latest_weight(
        WeightReading(kg=float(kg or 0), measured_on=at.date()) for kg, at in reversed(rows)
    )


def patient_protocols(session: Session, patient_id: int) -> tuple[PatientProtocolInfo, ...]:
    """Return every protocol of the patient, newest first, each with its versions."""
    rows = session.execute(
        select(PatientProtocol)
        .where(PatientProtocol.patient_id == patient_id)
        .order_by(PatientProtocol.id.desc())
    ).scalars()
    return tuple(_protocol_info(row) for row in rows)


def _active_row(session: Session, patient_id: int) -> PatientProtocol | None:
    return session.execute(
        select(PatientProtocol)
        .where(PatientProtocol.patient_id == patient_id, PatientProtocol.status == "active")
        .order_by(PatientProtocol.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def current_protocol(session: Session, patient_id: int) -> PatientProtocolInfo | None:
    """Return the patient's active protocol (with all versions), or ``None``."""
    row = _active_row(session, patient_id)
    return _protocol_info(row) if row is not None else None


def get_version(session: Session, version_id: int) -> ProtocolVersionInfo:
    row = session.get(ProtocolVersion, version_id)
    if row is None:
        raise UserFacingError("This protocol version no longer exists.")
    return _version_info(row, row.protocol.patient_id)


def active_signed_protocol(session: Session, patient_id: int) -> ProtocolVersionInfo | None:
    """Return the newest signed version of the patient's active protocol, or ``None`` when the
    patient has no active protocol or it has never been signed. A draft made after signing
    does not replace it: the signed version stays in force until a newer one is signed."""
    row = session.execute(
        select(ProtocolVersion)
        .join(PatientProtocol)
        .where(
            PatientProtocol.patient_id == patient_id,
            PatientProtocol.status == "active",
            ProtocolVersion.status == "signed",
        )
        .order_by(ProtocolVersion.signed_at.desc(), ProtocolVersion.number.desc())
        .limit(1)
    ).scalar_one_or_none()
    return _version_info(row, patient_id) if row is not None else None


def active_signed_protocols(
    session: Session, patient_ids: Sequence[int] | None = None
) -> dict[int, ProtocolVersionInfo]:
    """Return patient id -> newest signed version of the active protocol, for many patients at
    once (``None`` = every patient). Patients without one are left out."""
    query = (
        select(ProtocolVersion, PatientProtocol.patient_id)
        .join(PatientProtocol)
        .where(PatientProtocol.status == "active", ProtocolVersion.status == "signed")
        .order_by(ProtocolVersion.signed_at, ProtocolVersion.number)
    )
    if patient_ids is not None:
        query = query.where(PatientProtocol.patient_id.in_(list(patient_ids)))
    found: dict[int, ProtocolVersionInfo] = {}
    for row, patient_id in session.execute(query).all():
        found[patient_id] = _version_info(row, patient_id)  # later rows are newer
    return found


# --------------------------------------------------------------------------- practice limits


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
                changes.append(f"{route.value}.{name} {_num_or_unset(a.value)}->"
                               f"{_num_or_unset(b.value)}")
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
                problems.append(f"The {words} for {route.value.replace('_', ' ')} must be more "
                                "than 0.")
            if limit.value is not None and not limit.source.strip():
                problems.append(f"Say where the {words} for {route.value.replace('_', ' ')} "
                                "comes from (its source).")
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
        session, actor, audit_actions.PRACTICE_LIMITS_CHANGED,
        detail=f"{len(changes)} changed: " + "; ".join(changes) if changes else "no change",
    )
    return stored


# --------------------------------------------------------------------------- templates


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
        raise UserFacingError(
            f"\"{name}\" is the name of a built-in template; choose another name."
        )
    entry = templates_to_data([_renamed(template, name)])["templates"][0]
    stored = templates_from_data(_file_data([entry]))[0]  # schema check before storing
    row = session.execute(
        select(PracticeTemplate).where(PracticeTemplate.name_folded == name.casefold())
    ).scalar_one_or_none()
    if row is None:
        row = PracticeTemplate(name=name, name_folded=name.casefold(), template_json="{}",
                               updated_by=actor.user_name)
        session.add(row)
    row.name = name
    row.template_json = json.dumps(entry, ensure_ascii=False)
    row.updated_by = actor.user_name
    session.flush()
    record_event(session, actor, audit_actions.PROTOCOL_TEMPLATE_SAVED,
                 detail=f"template {row.id}; example values: {stored.example_values}")
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
        raise UserFacingError(f"There is no practice template called \"{name.strip()}\".")
    template_id = row.id
    session.execute(delete(PracticeTemplate).where(PracticeTemplate.id == template_id))
    record_event(session, actor, audit_actions.PROTOCOL_TEMPLATE_DELETED,
                 detail=f"template {template_id}")


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
            f"{path.name} uses the built-in template name \"{clashes[0]}\"; rename it in the "
            "file and import again."
        )
    saved = tuple(save_template(session, actor, t) for t in templates)
    record_event(session, actor, audit_actions.PROTOCOL_TEMPLATES_IMPORTED,
                 detail=f"{len(saved)} template(s) imported")
    return saved


def export_templates_file(
    session: Session, path: Path, names: Iterable[str] | None = None
) -> int:
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


# --------------------------------------------------------------------------- drafts


def _require_patient(session: Session, patient_id: int) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise UserFacingError("This patient is no longer in the practice database.")
    return patient


def _store_protocol(row: ProtocolVersion, protocol: Protocol) -> None:
    row.protocol_json = json.dumps(protocol_to_dict(protocol), sort_keys=True, ensure_ascii=False)
    row.content_hash = protocol_content_hash(protocol)


def _set_weight(row: ProtocolVersion, weight: WeightReading | None) -> None:
    row.weight_kg = weight.kg if weight is not None else None
    row.weight_measured_on = weight.measured_on if weight is not None else None


def save_draft(
    session: Session,
    actor: Actor,
    patient_id: int,
    protocol: Protocol,
    start_date: date,
    *,
    template_name: str = "",
) -> ProtocolVersionInfo:
    """Save ``protocol`` as the patient's draft: the active protocol's open draft is updated,
    or a new draft version is added (a new protocol is started when none is active). Signed
    versions are never touched. Physicians only. The chart's latest weight is stored with it."""
    require(actor, Permission.EDIT_CLINICAL, "edit a protocol")
    _require_patient(session, patient_id)
    parent = _active_row(session, patient_id)
    created = False
    if parent is None:
        parent = PatientProtocol(patient_id=patient_id, status="active",
                                 created_by=actor.user_name)
        session.add(parent)
        session.flush()
    draft = next((v for v in reversed(parent.versions) if v.status == "draft"), None)
    if draft is None:
        number = max((v.number for v in parent.versions), default=0) + 1
        draft = ProtocolVersion(protocol=parent, number=number, status="draft",
                                created_by=actor.user_name, protocol_json="{}", content_hash="")
        session.add(draft)
        created = True
    _store_protocol(draft, protocol)
    draft.start_date = start_date
    draft.template_name = template_name or draft.template_name or ""
    _set_weight(draft, chart_weight(session, patient_id))
    draft.updated_at = _now()
    session.flush()
    record_event(
        session, actor,
        audit_actions.PROTOCOL_DRAFT_CREATED if created else audit_actions.PROTOCOL_DRAFT_SAVED,
        patient_id=patient_id,
        detail=f"protocol {parent.id} version {draft.number}; hash {draft.content_hash[:12]}",
    )
    return _version_info(draft, patient_id)


def create_draft_from_template(
    session: Session, actor: Actor, patient_id: int, template: ProtocolTemplate, start_date: date
) -> ProtocolVersionInfo:
    """Start (or replace the open draft with) a draft holding ``template``'s values. Example
    values stay marked as examples, so the draft cannot be signed until they are confirmed."""
    return save_draft(session, actor, patient_id, template.protocol, start_date,
                      template_name=template.name)


def create_draft_from_previous(
    session: Session, actor: Actor, patient_id: int, *, start_date: date | None = None
) -> ProtocolVersionInfo:
    """Return the active protocol's open draft, or a new draft copied from its newest version
    (this is how a signed protocol is edited: the signed version itself never changes)."""
    require(actor, Permission.EDIT_CLINICAL, "edit a protocol")
    parent = _active_row(session, patient_id)
    if parent is None or not parent.versions:
        raise UserFacingError("This patient has no active protocol to edit; start one from a "
                              "template.")
    latest = parent.versions[-1]
    if latest.status == "draft":
        return _version_info(latest, patient_id)
    previous = _version_info(latest, patient_id)
    return save_draft(session, actor, patient_id, previous.protocol,
                      start_date or previous.start_date, template_name=previous.template_name)


# --------------------------------------------------------------------------- signing


def review_gate(session: Session, patient_id: int) -> ReviewGate:
    """Ask the interaction-review feature whether a current signed review exists."""
    from ketadesk.storage.interaction_reviews import review_status

    status = review_status(session, patient_id)
    state = str(status.state)
    review_id = status.review_id
    if state == "current" and review_id is not None:
        return ReviewGate("current", review_id, "")
    if state == "stale":
        what = str(getattr(status, "stale_reason", "") or "the chart changed")
        when = _stale_since(status)
        reason = (
            f"{REVIEW_REQUIRED_TEXT}; the review for this patient is stale "
            f"({what}{' on ' + when if when else ''}). Review interactions again and sign."
        )
    else:
        reason = (
            f"{REVIEW_REQUIRED_TEXT}; this patient has no signed interaction review yet."
        )
    return ReviewGate(state if state in ("none", "stale") else "none", review_id, reason)


def _stale_since(status: object) -> str:
    value = getattr(status, "stale_since", None)
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return ""


def signing_check(
    session: Session,
    actor: Actor,
    patient_id: int,
    protocol: Protocol,
    today: date,
) -> SigningCheck:
    """Validate ``protocol`` for this patient as the editor shows it: practice limits, the
    chart's latest weight (kg) and the interaction review."""
    weight = chart_weight(session, patient_id)
    messages = validate_protocol(protocol, get_practice_limits(session), weight, today)
    return SigningCheck(
        messages=tuple(messages),
        weight=weight,
        review=review_gate(session, patient_id),
        may_sign=actor.can(Permission.SIGN),
    )


def sign_version(
    session: Session,
    actor: Actor,
    version_id: int,
    *,
    acknowledged_warnings: Iterable[str] = (),
    today: date | None = None,
) -> ProtocolVersionInfo:
    """Sign a draft version. Refused unless the actor is a physician, the draft passes
    validation without errors, every warning's code is in ``acknowledged_warnings``, and the
    patient has a current signed interaction review (whose id is stored with the version).
    The signed version is immutable afterwards."""
    require(actor, Permission.SIGN, "sign a protocol")
    row = session.get(ProtocolVersion, version_id)
    if row is None:
        raise UserFacingError("This protocol version no longer exists.")
    parent = row.protocol
    if row.status != "draft":
        raise UserFacingError(
            f"Version {row.number} is already signed; a signed version cannot be changed."
        )
    if parent.status != "active":
        raise UserFacingError("This protocol was discontinued; start a new protocol instead.")
    info = _version_info(row, parent.patient_id)
    if protocol_content_hash(info.protocol) != row.content_hash:
        raise UserFacingError("This draft does not match its checksum; open it again and save.")
    day = today or _now().date()
    check = signing_check(session, actor, parent.patient_id, info.protocol, day)
    if not check.review.allows_signing:
        raise UserFacingError(check.review.reason)
    if check.errors:
        first = "; ".join(m.message for m in check.errors[:2])
        more = len(check.errors) - 2
        raise UserFacingError(
            f"The protocol cannot be signed: {first}"
            + (f" (and {more} more problem{'s' if more != 1 else ''})" if more > 0 else "")
        )
    acknowledged = set(acknowledged_warnings)
    missing = [m for m in check.warnings if m.code not in acknowledged]
    if missing:
        raise UserFacingError(
            "Acknowledge each warning before signing: " + "; ".join(m.message for m in missing[:2])
            + (f" (and {len(missing) - 2} more)" if len(missing) > 2 else "")
        )
    now = _now()
    row.status = "signed"
    row.signed_by = actor.user_name
    row.signed_by_full_name = actor.full_name
    row.signed_at = now
    row.interaction_review_id = check.review.review_id
    row.acknowledged_warnings_json = json.dumps(sorted({m.code for m in check.warnings}))
    _set_weight(row, check.weight)
    row.updated_at = now
    session.flush()
    record_event(
        session, actor, audit_actions.PROTOCOL_SIGNED, patient_id=parent.patient_id,
        detail=(f"protocol {parent.id} version {row.number}; hash {row.content_hash[:12]}; "
                f"review {check.review.review_id}; warnings acknowledged "
                f"{len(check.warnings)}"),
    )
    return _version_info(row, parent.patient_id)


def discontinue_protocol(
    session: Session, actor: Actor, protocol_id: int, reason: str
) -> PatientProtocolInfo:
    """Discontinue an active protocol with a reason (physicians only). The reason is stored
    on the protocol, not in the audit trail; an open draft stays as history."""
    require(actor, Permission.EDIT_CLINICAL, "discontinue a protocol")
    text = reason.strip()
    if not text:
        raise UserFacingError("Give a reason for discontinuing the protocol.")
    if len(text) > DISCONTINUE_REASON_MAX:
        raise UserFacingError(
            f"The reason can be at most {DISCONTINUE_REASON_MAX} characters long."
        )
    row = session.get(PatientProtocol, protocol_id)
    if row is None:
        raise UserFacingError("This protocol no longer exists.")
    if row.status != "active":
        raise UserFacingError("This protocol is already discontinued.")
    row.status = "discontinued"
    row.discontinued_reason = text
    row.discontinued_by = actor.user_name
    row.discontinued_at = _now()
    session.flush()
    record_event(session, actor, audit_actions.PROTOCOL_DISCONTINUED,
                 patient_id=row.patient_id, detail=f"protocol {row.id}")
    return _protocol_info(row)


# --------------------------------------------------------------------------- diff & monitoring


def _weight_words(weight: WeightReading | None) -> str:
    if weight is None:
        return "none"
    return f"{number_text(weight.kg)} kg ({weight.measured_on.isoformat()})"


def version_diff(a: ProtocolVersionInfo, b: ProtocolVersionInfo) -> list[str]:
    """Describe what changed from version ``a`` to version ``b``, one line per field, old value
    first ("Start dose: 10 mg → 15 mg"); start date and weight (kg) included. Empty when the
    versions are the same."""
    lines: list[str] = []
    if a.start_date != b.start_date:
        lines.append(f"Start date: {a.start_date.isoformat()} → {b.start_date.isoformat()}")
    if a.weight != b.weight:
        lines.append(f"Weight used: {_weight_words(a.weight)} → {_weight_words(b.weight)}")
    lines.extend(protocol_diff(a.protocol, b.protocol))
    return lines


def cadence_from_protocol(
    protocol: Protocol, default_checkin_days: int, default_questionnaire_weeks: int
) -> MonitoringCadence:
    """Monitoring cadence from a protocol's plan: check-ins every N days (the practice default
    when the plan sets none), questionnaires every N weeks (the shortest of PHQ-9 and GAD-7 the
    plan sets) and only the questionnaires the plan asks for."""
    mon = protocol.monitoring
    instruments: list[str] = []
    weeks: list[int] = []
    if mon.phq9_every_weeks:
        instruments.append("PHQ-9")
        weeks.append(mon.phq9_every_weeks)
    if mon.gad7_every_weeks:
        instruments.append("GAD-7")
        weeks.append(mon.gad7_every_weeks)
    return MonitoringCadence(
        checkin_every_days=mon.check_in_every_days or default_checkin_days,
        questionnaire_every_weeks=min(weeks) if weeks else default_questionnaire_weeks,
        instruments=tuple(instruments),
    )


def dose_rules_from_protocol(protocol: Protocol) -> DoseRules:
    """The rules a home dose is checked against: minimum interval (hours), highest single dose
    (mg), BP hold values (mmHg) and whether a sitter is required."""
    from ketadesk.core.protocols import maintenance_frequency

    mon = protocol.monitoring
    return DoseRules(
        min_hours_between_doses=min(
            protocol.frequency.min_hours_between_doses,
            maintenance_frequency(protocol).min_hours_between_doses,
        ),
        max_single_dose_mg=highest_dose_mg(protocol),
        hold_systolic_above=mon.hold_systolic_above_mmhg,
        hold_diastolic_above=mon.hold_diastolic_above_mmhg,
        sitter_required=mon.sitter_required,
    )



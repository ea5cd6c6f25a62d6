"""Patient protocols on the chart: drafts, signing, discontinuation, version diffs and the
monitoring rules a signed protocol sets. Every function takes a Session (one per user action)
and returns frozen dataclasses; nothing returned holds a live ORM row.

Reading versions lives in ``protocol_versions``; the practice limits and the practice
templates in ``storage/practice/`` (``practice_limits_store``, ``practice_templates``).
Callers import each name from the module that defines it.

Rules kept here (not in the UI):

* A signed version is never changed; editing a signed protocol starts a new draft version.
* Only physicians save, sign and discontinue; signing needs no validation error, an
  acknowledgement of every warning, and a current signed interaction review for the patient.
* Practice limits are changed only by physicians who manage users.
* Audit details name versions, hashes and limit names, never clinical free text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ketadesk.core import audit_actions
from ketadesk.core.dose_log import DoseRules
from ketadesk.core.errors import UserFacingError
from ketadesk.core.monitoring_due import MonitoringCadence
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.core.protocol_serialization import (
    protocol_content_hash,
    protocol_diff,
    protocol_to_dict,
)
from ketadesk.core.protocol_templates import ProtocolTemplate
from ketadesk.core.protocol_validation import (
    ValidationMessage,
    validate_protocol,
)
from ketadesk.core.protocols import (
    Protocol,
    WeightReading,
    highest_dose_mg,
    number_text,
)
from ketadesk.models.patients import Patient
from ketadesk.models.protocols import PatientProtocol, ProtocolVersion
from ketadesk.storage.practice.practice_limits_store import (
    get_practice_limits,
)
from ketadesk.storage.protocols.draft_versions import (
    VersionMark,
    draft_changed,
    refuse_if_changed,
)
from ketadesk.storage.protocols.protocol_versions import (
    PatientProtocolInfo,
    ProtocolVersionInfo,
    active_protocol_row,
    chart_weight,
    protocol_info,
    version_info,
)
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.content_signatures import PROTOCOL_VERSION, sign_content

DISCONTINUE_REASON_MAX = 2000

REVIEW_REQUIRED_TEXT = "A protocol can be signed only over a current, signed interaction review"


# --------------------------------------------------------------------------- dataclasses


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



def _now() -> datetime:
    return datetime.now(UTC)


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
    expected: VersionMark | None = None,
) -> ProtocolVersionInfo:
    """Save ``protocol`` as the patient's draft: the active protocol's open draft is updated,
    or a new draft version is added (a new protocol is started when none is active). Signed
    versions are never touched. Physicians only. The chart's latest weight is stored with it.

    ``expected`` is the version the form showed (``draft_versions.version_mark``): if someone
    saved, signed or started the protocol since, DraftChangedError refuses the save (also when
    the other save wins the race between reading and writing)."""
    require(actor, Permission.EDIT_CLINICAL, "edit a protocol")
    _require_patient(session, patient_id)
    parent = active_protocol_row(session, patient_id)
    refuse_if_changed(session, patient_id, parent, expected)
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
    try:
        session.flush()
    except StaleDataError:
        session.rollback()
        latest = active_protocol_row(session, patient_id)
        if latest is None or not latest.versions:
            raise
        raise draft_changed(session, patient_id, latest.versions[-1]) from None
    record_event(
        session, actor,
        audit_actions.PROTOCOL_DRAFT_CREATED if created else audit_actions.PROTOCOL_DRAFT_SAVED,
        patient_id=patient_id,
        detail=f"protocol {parent.id} version {draft.number}; hash {draft.content_hash[:12]}",
    )
    return version_info(draft, patient_id)


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
    parent = active_protocol_row(session, patient_id)
    if parent is None or not parent.versions:
        raise UserFacingError("This patient has no active protocol to edit; start one from a "
                              "template.")
    latest = parent.versions[-1]
    if latest.status == "draft":
        return version_info(latest, patient_id)
    previous = version_info(latest, patient_id)
    return save_draft(session, actor, patient_id, previous.protocol,
                      start_date or previous.start_date, template_name=previous.template_name)


# --------------------------------------------------------------------------- signing


def review_gate(session: Session, patient_id: int) -> ReviewGate:
    """Ask the interaction-review feature whether a current signed review exists."""
    from ketadesk.storage.reviews.interaction_reviews import review_status

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
    info = version_info(row, parent.patient_id)
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
    sign_content(session, actor, PROTOCOL_VERSION, row.id, row.content_hash)
    return version_info(row, parent.patient_id)


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
    return protocol_info(row)


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

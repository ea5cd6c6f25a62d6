"""The compliance worklist: what needs doing before the next prescriptions can go out.

* PDMP look-ups due (by the patient's state rule and the practice's New Jersey setting),
* informed consents missing, expired, expiring within 30 days, or on an older version,
* licences and DEA registrations expired or expiring within 60 days,
* prescriptions with refills left whose refill window has closed.

Active patients only. ``patients_on_worklist`` gives the ids for a roster filter.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.compliance_rules import (
    ComplianceRules,
    NjKetamineLookup,
    credential_warning_days,
    last_fill_day,
    load_compliance_rules,
    pdmp_requirement,
    start_of_day_utc,
)
from ketadesk.core.demographics import age_in_years
from ketadesk.core.permissions import Actor
from ketadesk.core.prescription_checks import (
    CONSENT_WARNING_DAYS,
    CREDENTIAL_LABELS,
    consent_expires_on,
)
from ketadesk.models.compliance import (
    ConsentRecord,
    ConsentTemplate,
    PdmpCheck,
    Prescription,
    PrescriptionFill,
)
from ketadesk.models.patients import Patient
from ketadesk.storage.compliance.credentials import all_credentials
from ketadesk.storage.compliance.prescriptions import nj_lookup_setting
from ketadesk.storage.practice.settings_store import get_setting
from ketadesk.storage.security.audit_log import record_event

WORK_LABELS: dict[str, str] = {
    "pdmp_due": "PDMP look-up due",
    "consent_missing": "Consent missing",
    "consent_expired": "Consent expired",
    "consent_expiring": "Consent expiring",
    "consent_old_version": "Consent: new version",
    "credential_expired": "Licence/registration expired",
    "credential_expiring": "Licence/registration expiring",
    "refills_lapsed": "Refills lapsed",
}


class WorkKind(StrEnum):
    PDMP_DUE = "pdmp_due"
    CONSENT_MISSING = "consent_missing"
    CONSENT_EXPIRED = "consent_expired"
    CONSENT_EXPIRING = "consent_expiring"
    CONSENT_OLD_VERSION = "consent_old_version"
    CREDENTIAL_EXPIRED = "credential_expired"
    CREDENTIAL_EXPIRING = "credential_expiring"
    REFILLS_LAPSED = "refills_lapsed"


@dataclass(frozen=True)
class WorkItem:
    """One line of the worklist: a patient's (MRN, name) or a physician's (user name)."""

    kind: WorkKind
    message: str
    due_on: date | None = None
    patient_id: int | None = None
    mrn: str | None = None
    patient_name: str | None = None
    user_name: str | None = None
    prescription_id: int | None = None


@dataclass(frozen=True)
class _PatientRow:
    id: int
    mrn: str
    first_name: str
    last_name: str
    dob: date
    state: str


@dataclass(frozen=True)
class _IssuedRow:
    id: int
    refills: int
    issued_on: date
    issued_at: datetime
    fills: int


def _aware(moment: datetime) -> datetime:
    """A stored UTC time read through an aggregate may come back naive."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _patients(session: Session) -> list[_PatientRow]:
    rows = session.execute(
        select(Patient.id, Patient.mrn, Patient.first_name, Patient.last_name, Patient.dob,
               Patient.state)
        .where(Patient.status == "active").order_by(Patient.mrn)
    ).all()
    return [_PatientRow(*row) for row in rows]


def compliance_worklist(
    session: Session, today: date, *, rules: ComplianceRules | None = None
) -> tuple[WorkItem, ...]:
    """Everything due, patients by MRN, then credentials by user name."""
    rules = rules or load_compliance_rules()
    patients = _patients(session)
    active = select(Patient.id).where(Patient.status == "active")
    fills = (
        select(func.count(PrescriptionFill.id))
        .where(PrescriptionFill.prescription_id == Prescription.id)
        .scalar_subquery()
    )
    issued: dict[int, list[_IssuedRow]] = defaultdict(list)
    for row in session.execute(
        select(Prescription.id, Prescription.patient_id, Prescription.refills,
               Prescription.issued_on, Prescription.issued_at, fills)
        .where(Prescription.status == "issued", Prescription.patient_id.in_(active))
        .order_by(Prescription.issued_at)
    ).all():
        issued[row[1]].append(_IssuedRow(row[0], row[2], row[3], _aware(row[4]), row[5]))
    last_check: dict[tuple[int, str], datetime] = {
        (patient_id, state): _aware(when)
        for patient_id, state, when in session.execute(
            select(PdmpCheck.patient_id, PdmpCheck.state, func.max(PdmpCheck.checked_at))
            .where(PdmpCheck.patient_id.in_(active))
            .group_by(PdmpCheck.patient_id, PdmpCheck.state)
        ).all()
    }
    latest_consent: dict[int, tuple[int, date]] = {}
    for patient_id, template_id, signed_on in session.execute(
        select(ConsentRecord.patient_id, ConsentRecord.template_id, ConsentRecord.signed_on)
        .where(ConsentRecord.patient_id.in_(active))
        .order_by(ConsentRecord.signed_on, ConsentRecord.id)
    ).all():
        latest_consent[patient_id] = (template_id, signed_on)
    current_template = session.execute(
        select(ConsentTemplate.id).order_by(ConsentTemplate.version.desc()).limit(1)
    ).scalar_one_or_none()
    months = int(get_setting(session, "consent_valid_months"))
    nj_setting = nj_lookup_setting(session)
    items: list[WorkItem] = []
    for patient in patients:
        pdmp = _pdmp_due(rules, patient, today, issued[patient.id],
                         last_check.get((patient.id, patient.state)), nj_setting)
        if pdmp:
            items.append(_patient_item(WorkKind.PDMP_DUE, pdmp, today, patient))
        consent_item = _consent_item(latest_consent.get(patient.id), current_template, months,
                                     today)
        if consent_item:
            kind, message, due = consent_item
            items.append(_patient_item(kind, message, due, patient))
        for rx in issued[patient.id]:
            left = rx.refills - max(0, rx.fills - 1)
            last = last_fill_day(rules, rx.issued_on)
            if left > 0 and today > last:
                items.append(_patient_item(
                    WorkKind.REFILLS_LAPSED,
                    f"Prescription {rx.id} of {rx.issued_on.isoformat()} has {left} refill"
                    f"{'s' if left != 1 else ''} left that can no longer be filled (window "
                    f"closed {last.isoformat()}); a new prescription is needed.",
                    last, patient, prescription_id=rx.id,
                ))
    items.extend(_credential_items(session, rules, today))
    return tuple(items)


def _patient_item(
    kind: WorkKind, message: str, due: date | None, patient: _PatientRow,
    prescription_id: int | None = None,
) -> WorkItem:
    return WorkItem(kind, message, due, patient.id, patient.mrn,
                    f"{patient.last_name}, {patient.first_name}",
                    prescription_id=prescription_id)


def _pdmp_due(
    rules: ComplianceRules,
    patient: _PatientRow,
    today: date,
    issued: Sequence[_IssuedRow],
    last_check: datetime | None,
    nj_setting: NjKetamineLookup,
) -> str | None:
    """Why a look-up is due before the patient's next prescription, or None."""
    at = start_of_day_utc(today + timedelta(days=1))  # as of the end of today
    need = pdmp_requirement(
        rules, state=patient.state, age_years=age_in_years(patient.dob, today), issue_at=at,
        issue_on=today, previous_issued_at=[rx.issued_at for rx in issued],
        nj_setting=nj_setting,
    )
    if not need.required:
        return None
    since = need.counts_since
    if issued and since is None:
        return None  # the first-time look-up was needed before the first prescription only
    if last_check is not None and (since is None or last_check >= since):
        return None
    return f"{patient.state} PDMP look-up due before the next prescription. {need.reason}"


def _consent_item(
    consent: tuple[int, date] | None, current_template: int | None, months: int, today: date
) -> tuple[WorkKind, str, date | None] | None:
    if consent is None:
        return WorkKind.CONSENT_MISSING, "No signed informed consent on file.", today
    template_id, signed_on = consent
    expires = consent_expires_on(signed_on, months)
    if today >= expires:
        return (WorkKind.CONSENT_EXPIRED,
                f"Informed consent expired on {expires.isoformat()}.", expires)
    if current_template is not None and template_id != current_template:
        return (WorkKind.CONSENT_OLD_VERSION,
                "Consent was signed on an older version of the consent; ask again.", today)
    if (expires - today).days <= CONSENT_WARNING_DAYS:
        return (WorkKind.CONSENT_EXPIRING,
                f"Informed consent expires on {expires.isoformat()}.", expires)
    return None


def _credential_items(
    session: Session, rules: ComplianceRules, today: date
) -> list[WorkItem]:
    best: dict[tuple[str, str, str], Any] = {}
    for cred in all_credentials(session):
        key = (cred.user_name, cred.kind.value, cred.state)
        if key not in best or cred.expires_on > best[key].expires_on:
            best[key] = cred
    warn = credential_warning_days(rules)
    items = []
    for cred in sorted(best.values(), key=lambda c: (c.user_name, c.state, c.kind.value)):
        label = f"{cred.state} {CREDENTIAL_LABELS[cred.kind]} {cred.number}"
        if today > cred.expires_on:
            items.append(WorkItem(WorkKind.CREDENTIAL_EXPIRED,
                                  f"{label} expired on {cred.expires_on.isoformat()}.",
                                  cred.expires_on, user_name=cred.user_name))
        elif (cred.expires_on - today).days <= warn:
            items.append(WorkItem(WorkKind.CREDENTIAL_EXPIRING,
                                  f"{label} expires on {cred.expires_on.isoformat()}.",
                                  cred.expires_on, user_name=cred.user_name))
    return items


def patients_on_worklist(session: Session, today: date) -> set[int]:
    """Ids of patients with at least one worklist line (for a roster filter)."""
    return {i.patient_id for i in compliance_worklist(session, today) if i.patient_id}


def audit_worklist_viewed(session: Session, actor: Actor, items: Sequence[WorkItem]) -> None:
    """One audit event for reading the worklist: only the count."""
    record_event(session, actor, audit_actions.COMPLIANCE_WORKLIST_VIEWED,
                 detail=f"{len(items)} items")


def worklist_json(items: Sequence[WorkItem]) -> list[dict[str, Any]]:
    return [
        {
            "kind": str(i.kind),
            "message": i.message,
            "due_on": None if i.due_on is None else i.due_on.isoformat(),
            "mrn": i.mrn,
            "patient_name": i.patient_name,
            "user_name": i.user_name,
            "prescription_id": i.prescription_id,
        }
        for i in items
    ]


def worklist_pdf(session: Session, actor: Actor, today: date) -> bytes:
    """The worklist as a printable PDF; audited like reading it (the count only)."""
    # reportlab loads here, not at import: the roster imports this module at log-in.
    from ketadesk.reports.compliance_pdf import WorklistLine, render_worklist_pdf
    from ketadesk.storage.compliance.compliance_printouts import practice_heading

    items = compliance_worklist(session, today)
    lines = [
        WorklistLine(
            WORK_LABELS[str(i.kind)],
            f"{i.mrn} {i.patient_name}" if i.mrn else f"user {i.user_name}",
            "" if i.due_on is None else i.due_on.isoformat(),
            i.message,
        )
        for i in items
    ]
    data = render_worklist_pdf(practice_heading(session), lines, today)
    record_event(session, actor, audit_actions.PRINT,
                 detail=f"compliance worklist, {len(items)} items")
    return data

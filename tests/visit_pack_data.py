"""Synthetic patients with a history of every record type that travels to a visit pack, made
through the real services, and helpers to open a practice or a pack as the physician."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ketadesk.core.checkins import CheckInDraft, SymptomReport
from ketadesk.core.dose_log import DoseLogEntry
from ketadesk.models.outcomes import DoseBreachAlert
from ketadesk.models.patients import Patient
from ketadesk.storage.outcomes import outcomes
from ketadesk.storage.patients.patient_medications import add_medication
from ketadesk.storage.patients.patients import add_allergy, add_condition
from ketadesk.storage.security.database import PracticeDatabase
from tests.conftest import PASSWORD, PHYSICIAN
from tests.unit.signed_protocol_patients import patient_with_signed_protocol


def add_history(session: Any, physician: Any, patient_id: int, *, weeks: int = 2) -> None:
    """Medications, a condition, an allergy, and ``weeks`` of check-ins, questionnaires and
    home doses (one dose above the protocol's BP hold limit opens a dose alert)."""
    now = datetime.now(UTC)
    add_medication(session, physician, patient_id, "sertraline 50 mg daily")
    add_condition(session, physician, patient_id, "major depressive disorder")
    add_allergy(session, physician, patient_id, "penicillin", "rash")
    for week in range(weeks, 0, -1):
        day = (now - timedelta(days=7 * week)).date()
        outcomes.record_checkin(
            session, physician, patient_id,
            CheckInDraft(day, "phone", "Dr. Rowan Quill", (SymptomReport("nausea", "mild"),),
                         "as_prescribed", "Steady."),
        )
        outcomes.record_questionnaire(session, physician, patient_id, "PHQ-9", [1] * 8 + [0], day)
        outcomes.record_dose(
            session, physician, patient_id,
            DoseLogEntry(now - timedelta(days=7 * week, hours=2), 10.0, 128, 80, 124, 78, 70, 72,
                         True),
        )


@contextmanager
def opened(path: Path, *, returning: bool = False) -> Iterator[tuple[PracticeDatabase, Any]]:
    db, outcome = PracticeDatabase.unlock(
        path, PHYSICIAN, PASSWORD, returning_visit_pack=returning
    )
    try:
        yield db, outcome.actor
    finally:
        db.close()


def make_visit_practice(path: Path, patients: int = 2, weeks: int = 2) -> list[str]:
    """Fill a practice (a copy of the prepared one) with ``patients`` full histories plus
    one patient who stays at the office; return the MRNs of the full ones."""
    start = datetime.now(UTC).date() - timedelta(days=7 * weeks + 1)
    mrns: list[str] = []
    with opened(path) as (db, physician), db.session() as session:
        for index in range(patients + 1):
            name = "Visitperson" + "abcdefghijklmnopqrstuvwxyz"[index % 26]
            pid = patient_with_signed_protocol(session, physician, start, last_name=name)
            add_history(session, physician, pid, weeks=weeks)
            mrns.append(session.get(Patient, pid).mrn)
    return mrns[:patients]


def patient_id(session: Any, mrn: str) -> int:
    return int(session.execute(select(Patient.id).where(Patient.mrn == mrn)).scalar_one())


def an_open_dose_alert(session: Any, pid: int) -> int | None:
    return session.execute(
        select(DoseBreachAlert.id).where(
            DoseBreachAlert.patient_id == pid, DoseBreachAlert.acknowledged_at.is_(None)
        )
    ).scalar()


def today() -> date:
    return datetime.now(UTC).date()


def sign_fresh_review(session: Any, physician: Any, pid: int) -> None:
    """Sign a new interaction review of the chart as it is (continue with monitoring)."""
    from ketadesk.storage.reviews.interaction_review_views import DecisionInput
    from ketadesk.storage.reviews.interaction_reviews import run_review, sign_review

    view = run_review(session, pid)
    decisions = [
        DecisionInput(
            f.flag.carry_forward_key,
            "continue_with_monitoring",
            override_reason="Reviewed at the home visit." if f.flag.severity == "contraindicated"
            else "",
        )
        for f in view.flags
        if f.needs_decision
    ]
    sign_review(session, physician, pid, decisions, expected_fingerprint=view.fingerprint,
                read_by_physician=view.not_checked)


def sign_new_protocol_version(session: Any, physician: Any, pid: int) -> int:
    """A new version of the active protocol, copied from the newest and signed; its id."""
    from ketadesk.storage.protocols import protocols as protocol_store
    from ketadesk.storage.protocols.protocol_versions import get_version

    draft = protocol_store.create_draft_from_previous(session, physician, pid)
    protocol = get_version(session, draft.version_id).protocol
    check = protocol_store.signing_check(session, physician, pid, protocol, today())
    assert not check.errors, [m.message for m in check.errors]
    protocol_store.sign_version(
        session, physician, draft.version_id,
        acknowledged_warnings=[m.code for m in check.warnings], today=today(),
    )
    return int(draft.version_id)


def add_compliance_history(session: Any, physician: Any, pid: int) -> int:
    """What the office holds before a visit: a signed consent, the physician's FL licence and
    DEA registration, a PDMP look-up, a telemedicine record, and a prescription with its first
    fill; the prescription's id."""
    from ketadesk.core.prescription_checks import CredentialKind, TelemedicineBasis
    from ketadesk.storage.compliance.consent import (
        consent_templates,
        ensure_consent_template,
        record_consent,
    )
    from ketadesk.storage.compliance.credentials import save_credential
    from ketadesk.storage.compliance.pdmp_checks import record_pdmp_check
    from ketadesk.storage.compliance.prescriptions import record_fill
    from ketadesk.storage.compliance.telemedicine import record_telemedicine

    ensure_consent_template(session, physician)
    template = consent_templates(session)[-1]
    record_consent(session, physician, pid, template_id=template.id, signed_on=today(),
                   method="paper", today=today())
    for kind, number in ((CredentialKind.STATE_LICENCE, "ME99881"),
                         (CredentialKind.DEA_REGISTRATION, "AD1234563")):
        if not any(c.number == number for c in _credentials(session, physician)):
            save_credential(session, physician, user_name=physician.user_name, kind=kind,
                            state="FL", number=number,
                            expires_on=today() + timedelta(days=400))
    record_pdmp_check(session, physician, pid, state="FL", result="Nothing of concern.",
                      checked_at=datetime.now(UTC) - timedelta(hours=1))
    record_telemedicine(session, physician, pid, basis=TelemedicineBasis.IN_PERSON_EVALUATION,
                        in_person_evaluation_on=today() - timedelta(days=30), today=today())
    rx_id = issue_a_prescription(session, physician, pid)
    record_fill(session, physician, rx_id, filled_on=today(), today=today())
    return rx_id


def _credentials(session: Any, physician: Any) -> Any:
    from ketadesk.storage.compliance.credentials import credentials_of

    return credentials_of(session, physician.user_name)


def issue_a_prescription(session: Any, physician: Any, pid: int) -> int:
    """A prescription from the signed protocol, its warnings acknowledged; its id."""
    from ketadesk.storage.compliance.prescriptions import (
        PrescriptionRequest,
        issue_prescription,
        prescription_checklist_for,
    )

    request = PrescriptionRequest(quantity=30, refills=2, pharmacy="Demo Compounding")
    checklist = prescription_checklist_for(session, physician, pid, request)
    issued = issue_prescription(session, physician, pid, request,
                                acknowledged=[str(w.code) for w in checklist.warnings])
    return int(issued.id)

"""Demo compliance records: the demo physician's licences and DEA registrations (one expiring
soon), the example consent signed by most patients (some long ago, so expired or expiring),
PDMP look-ups (some "not checked" with a reason) and
prescriptions issued over the last seven months with a few fills, so the compliance worklist
shows look-ups due, consents missing or expired, a registration expiring and lapsed refills.

Deterministic for a given seed; every value is synthetic.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core.permissions import Actor
from ketadesk.core.prescription_checks import CheckCode, CredentialKind
from ketadesk.models.patients import Patient
from ketadesk.storage.compliance.consent import (
    consent_templates,
    ensure_consent_template,
    record_consent,
)
from ketadesk.storage.compliance.credentials import save_credential
from ketadesk.storage.compliance.pdmp_checks import record_pdmp_check
from ketadesk.storage.compliance.prescriptions import (
    PrescriptionRefused,
    PrescriptionRequest,
    issue_prescription,
    record_fill,
)
from ketadesk.storage.protocols.protocol_versions import active_signed_protocols
from ketadesk.storage.security.database import PracticeDatabase

#: Patients with a signed protocol who get compliance records (issuing runs every check).
DEMO_COMPLIANCE_PATIENTS = 60
DEMO_PHARMACY = "Example Compounding Pharmacy (demo), 200 Sample Rd, Tampa, FL"


def populate(database: PracticeDatabase, physician: Actor) -> None:
    # Every record is made as the logged-in demo physician: an event written in the admin's
    # name would carry the practice key's signature, not the admin's (the audit check flags it).
    with database.session() as session:
        populate_demo_compliance(session, physician, physician)


def _credentials(session: Session, physician: Actor, today: datetime) -> None:
    day = today.date()
    for kind, state, number, days in (
        (CredentialKind.STATE_LICENCE, "FL", "ME0012345", 420),
        (CredentialKind.DEA_REGISTRATION, "FL", "AD1234563", 520),
        (CredentialKind.STATE_LICENCE, "NJ", "25MA09876500", 300),
        (CredentialKind.DEA_REGISTRATION, "NJ", "BD7654329", 40),  # expiring: on the worklist
    ):
        save_credential(session, physician, user_name=physician.user_name, kind=kind,
                        state=state, number=number, expires_on=day + timedelta(days=days))


def populate_demo_compliance(
    session: Session, physician: Actor, front_desk: Actor, *, seed: int = 19
) -> int:
    """Add the records; returns how many prescriptions were issued."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    _credentials(session, physician, now)
    ensure_consent_template(session, physician)
    template = consent_templates(session)[-1]
    signed = active_signed_protocols(session)
    patients = session.execute(
        select(Patient).where(Patient.id.in_(list(signed)), Patient.status == "active")
        .order_by(Patient.id)
    ).scalars().all()
    issued = 0
    every_code = [str(code) for code in CheckCode]
    for patient in patients[:DEMO_COMPLIANCE_PATIENTS]:
        roll = rng.random()
        if roll < 0.1:
            continue  # no consent, no look-up: "consent missing" and "look-up due"
        days_ago = rng.choice((3, 20, 45, 90, 150, 190, 200))
        issue_at = now - timedelta(days=days_ago, hours=rng.randint(1, 8))
        # most consented a few days before the first prescription; some long before
        consent_days = days_ago + (rng.choice((5, 5, 5, 340, 372)))
        record_consent(session, front_desk, patient.id, template_id=template.id,
                       signed_on=(now - timedelta(days=consent_days)).date(),
                       method=rng.choice(("paper", "on_screen")), today=now.date())
        who = front_desk
        if rng.random() < 0.1:
            record_pdmp_check(session, who, patient.id, state=patient.state,
                              not_checked_reason="System unavailable (demo)",
                              checked_at=issue_at - timedelta(hours=1))
        else:
            record_pdmp_check(session, who, patient.id, state=patient.state,
                              result="Reviewed; consistent with the history given (demo)",
                              checked_at=issue_at - timedelta(hours=1))
        try:
            rx = issue_prescription(
                session, physician, patient.id,
                PrescriptionRequest(quantity=rng.choice((12, 24, 30)),
                                    refills=rng.choice((1, 2, 5)), pharmacy=DEMO_PHARMACY,
                                    issue_at=issue_at),
                acknowledged=every_code,  # the demo accepts its own warnings
            )
        except PrescriptionRefused:
            continue
        issued += 1
        fill_day = rx.issued_on
        for _ in range(rng.randint(1, 2)):
            if fill_day > now.date():
                break
            record_fill(session, front_desk, rx.id, filled_on=fill_day, today=now.date())
            fill_day += timedelta(days=30)
    return issued

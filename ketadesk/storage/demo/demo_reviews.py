"""Demo step: signed interaction reviews for most active synthetic patients.

Decisions follow a plain rule of thumb so the demo reads sensibly: hold ketamine for a
contraindication, ask the other prescriber about drugs that are better changed at source,
adjust the protocol for other major drug findings, and continue with monitoring otherwise.
A few reviewed patients get a newer blood-pressure reading afterwards so the roster shows
stale reviews too.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core.permissions import Actor
from ketadesk.models.patients import Patient, VitalSign
from ketadesk.storage.reviews.interaction_reviews import (
    DecisionInput,
    FlagView,
    run_review,
    sign_review,
)
from ketadesk.storage.security.database import PracticeDatabase

#: Reviews are signed for at most this many patients (large demos stay quick to build).
MAX_REVIEWS = 2000
_BATCH = 100
_ASK_OTHER_PRESCRIBER = ("DRUG-MAOI", "DRUG-THEOPHYLLINE", "DRUG-CYP3A4-INHIBITOR")


def demo_decision(item: FlagView) -> DecisionInput:
    """A sensible demo decision for one flag (synthetic wording, no real patient)."""
    flag = item.flag
    key = flag.carry_forward_key
    if flag.severity == "contraindicated":
        return DecisionInput(key, "hold_ketamine", note="Demo: hold until reassessed.")
    if flag.rule_id in _ASK_OTHER_PRESCRIBER:
        return DecisionInput(
            key, "ask_other_prescriber_to_change", note="Demo: letter sent to the prescriber."
        )
    if flag.kind == "vital":
        # Written for the patient and marked so: the plan prints it (the others stay private).
        return DecisionInput(
            key, "continue_with_monitoring",
            note="Check your blood pressure before each dose and again 40 minutes after.",
            note_for_patient=True,
        )
    if flag.severity == "major" and flag.kind == "drug":
        return DecisionInput(key, "adjust_protocol", note="Demo: lower starting dose.")
    return DecisionInput(key, "continue_with_monitoring")


def populate(database: PracticeDatabase, physician: Actor) -> int:
    """Sign a review for about four in five active patients; returns how many were signed."""
    with database.session() as session:
        active = list(
            session.execute(
                select(Patient.id).where(Patient.status == "active").order_by(Patient.id)
            ).scalars()
        )
    chosen = [pid for pid in active if pid % 5 != 0][:MAX_REVIEWS]
    signed = 0
    for start in range(0, len(chosen), _BATCH):
        with database.session() as session:
            for pid in chosen[start:start + _BATCH]:
                view = run_review(session, pid)
                decisions = [demo_decision(f) for f in view.flags if f.needs_decision]
                # The demo physician has read every line the software did not check.
                sign_review(session, physician, pid, decisions,
                            expected_fingerprint=view.fingerprint,
                            read_by_physician=view.not_checked)
                signed += 1
                if pid % 8 == 0:
                    _newer_blood_pressure(session, pid, physician.user_name)
    return signed


def _newer_blood_pressure(session: Session, patient_id: int, entered_by: str) -> None:
    latest = session.execute(
        select(VitalSign)
        .where(VitalSign.patient_id == patient_id)
        .order_by(VitalSign.measured_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if latest is None or latest.systolic is None or latest.diastolic is None:
        return
    session.add(
        VitalSign(
            patient_id=patient_id,
            measured_at=datetime.now(UTC),
            systolic=latest.systolic + 6,
            diastolic=latest.diastolic + 3,
            heart_rate=latest.heart_rate,
            weight_kg=latest.weight_kg,
            entered_by=entered_by,
        )
    )

"""Compliance benchmarks: the pre-issue checklist (pure; it runs again as the physician edits
the quantity and refills) and the compliance worklist over a practice of 10,000 synthetic
patients with a consent and a PDMP look-up each (the worklist reads every active patient).

The practice is built in a temporary folder on each run (bulk inserts, about 10 s) and
removed afterwards; nothing is cached. Patients: ``KETADESK_BENCH_COMPLIANCE_PATIENTS``
(default 10,000). Floor for the worklist: reading the active patients' ids with one SELECT.
"""

from __future__ import annotations

import os
import random
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from benchmarks._harness import BenchResult, median_ms
from ketadesk.core.compliance_rules import load_compliance_rules
from ketadesk.core.prescription_checks import (
    ChecklistInputs,
    ConsentFact,
    CredentialFact,
    CredentialKind,
    PdmpFact,
    prescription_checklist,
)

PATIENTS = int(os.environ.get("KETADESK_BENCH_COMPLIANCE_PATIENTS", "10000"))
PASSWORD = "bench-compliance-password-1"


def _inputs() -> ChecklistInputs:
    now = datetime(2026, 6, 15, 15, tzinfo=UTC)
    return ChecklistInputs(
        patient_state="NJ", patient_dob=date(1980, 1, 1), issue_at=now, issue_on=now.date(),
        quantity=30, refills=5, remote=False, protocol_signed=True, review_state="current",
        credentials=tuple(
            CredentialFact(kind, "NJ", "AD1234563", date(2027, 1, 1))
            for kind in CredentialKind
        ),
        pdmp_checks=tuple(PdmpFact("NJ", now - timedelta(days=d), True) for d in range(40)),
        previous_issued_at=tuple(now - timedelta(days=30 * m) for m in range(1, 12)),
        consent=ConsentFact(1, date(2026, 1, 1), True), consent_valid_months=12,
        telemedicine=(),
    )


def _practice(folder: Path) -> tuple[object, object]:
    from ketadesk.models.compliance import ConsentRecord, PdmpCheck
    from ketadesk.models.patients import Patient
    from ketadesk.storage.compliance.consent import consent_templates, ensure_consent_template
    from ketadesk.storage.demo.demo_data import populate_demo_patients
    from ketadesk.storage.security.database import PracticeDatabase

    db, physician, _ = PracticeDatabase.create(
        folder / "practice.db", user_name="physician", full_name="Dr. Bench", password=PASSWORD
    )
    rng = random.Random(19)
    today = datetime.now(UTC).date()
    with db.session() as session:
        populate_demo_patients(session, PATIENTS, entered_by="physician")
        ensure_consent_template(session, physician)
        template = consent_templates(session)[-1].id
        rows = session.execute(select(Patient.id, Patient.state)).all()
        session.add_all(
            ConsentRecord(patient_id=pid, template_id=template, method="paper",
                          signed_on=today - timedelta(days=rng.randint(0, 500)),
                          recorded_by="physician")
            for pid, _state in rows
        )
        session.add_all(
            PdmpCheck(patient_id=pid, state=state, checked_by="physician",
                      checked_by_role="physician", result_text="bench",
                      checked_at=datetime.now(UTC) - timedelta(days=rng.randint(0, 200)))
            for pid, state in rows
        )
    return db, physician


def run() -> list[BenchResult]:
    rules = load_compliance_rules()
    facts = _inputs()
    results = [
        BenchResult(
            "compliance: pre-issue checklist (pure)",
            median_ms(lambda: prescription_checklist(facts, rules), repeat=50),
            goal="goal <= 5 ms (recomputed as quantity and refills are typed)",
        )
    ]
    from ketadesk.models.patients import Patient
    from ketadesk.storage.compliance.compliance_worklist import compliance_worklist

    with tempfile.TemporaryDirectory() as folder:
        db, _physician = _practice(Path(folder))
        today = datetime.now(UTC).date()
        try:
            with db.session() as session:  # type: ignore[attr-defined]
                count = len(compliance_worklist(session, today))
                worklist = median_ms(lambda: compliance_worklist(session, today), repeat=5)
                floor = median_ms(lambda: session.execute(
                    select(Patient.id).where(Patient.status == "active")).all(), repeat=5)
        finally:
            db.close()  # type: ignore[attr-defined]
    results.append(BenchResult(
        f"compliance: worklist, {PATIENTS:,} patients",
        worklist,
        "SELECT active patient ids",
        floor,
        goal="goal <= 1,000 ms for 10,000 patients",
        extra=f"{count:,} items",
    ))
    return results

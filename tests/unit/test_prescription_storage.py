"""Prescriptions and their compliance records on a real encrypted practice database: the
checklist gathered from the chart, issuing and refusing, permissions, voiding, fills at the
refill and day limits, signatures, audit without free text, the worklist and the PDFs."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.prescription_checks import CredentialKind, TelemedicineBasis
from ketadesk.models.audit import AuditEvent
from ketadesk.models.patients import Patient
from ketadesk.storage.compliance.compliance_printouts import consent_form_pdf, prescription_pdf
from ketadesk.storage.compliance.compliance_worklist import WorkKind, compliance_worklist
from ketadesk.storage.compliance.consent import (
    add_consent_template,
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
    issue_prescription_recording_refusal,
    prescription_checklist_for,
    prescriptions_of,
    record_fill,
    void_prescription,
)
from ketadesk.storage.compliance.telemedicine import record_telemedicine
from ketadesk.storage.security.audit_log import verify_audit
from tests.both_back_ends import edit_outside_ketadesk
from tests.unit.signed_protocol_patients import patient_with_signed_protocol


@pytest.fixture
def practice(practice_on: Any) -> Any:
    """Each test on a practice file and on a practice server (``tests/conftest.py``)."""
    return practice_on


TODAY = datetime.now(UTC).astimezone().date()
SECRET_RESULT = "Zebra-result-words"


def back_date(practice, prescription_id: int, issued_on: date) -> None:  # type: ignore[no-untyped-def]
    """An old prescription: the test moves its issue day back in time, past the services
    (a server refuses any change to an issued prescription)."""
    edit_outside_ketadesk(
        practice,
        f"UPDATE prescriptions SET issued_on = '{issued_on.isoformat()}' "
        f"WHERE id = {prescription_id}",
    )


def ready_patient(practice, session) -> int:  # type: ignore[no-untyped-def]
    """An FL patient with a signed protocol, consent, credentials and a fresh look-up."""
    pid = patient_with_signed_protocol(session, practice.physician, TODAY)
    ensure_consent_template(session, practice.physician)
    template = consent_templates(session)[-1]
    record_consent(session, practice.admin, pid, template_id=template.id, signed_on=TODAY,
                   method="paper", today=TODAY)
    for kind, number in ((CredentialKind.STATE_LICENCE, "ME99881"),
                         (CredentialKind.DEA_REGISTRATION, "AD1234563")):
        save_credential(session, practice.physician, user_name=practice.physician.user_name,
                        kind=kind, state="FL", number=number,
                        expires_on=TODAY + timedelta(days=400))
    record_pdmp_check(session, practice.admin, pid, state="FL", result=SECRET_RESULT,
                      checked_at=datetime.now(UTC) - timedelta(minutes=5))
    return pid


def test_issue_a_prescription_from_the_signed_protocol(practice) -> None:  # type: ignore[no-untyped-def]
    with practice.db.session() as s:
        pid = ready_patient(practice, s)
        rx = issue_prescription(s, practice.physician, pid,
                                PrescriptionRequest(quantity=30, refills=5, pharmacy="Demo Rx"))
        assert rx.product == "Compounded ketamine troche" or rx.product
        assert rx.directions.startswith("Dissolve") and rx.refills == 5
        assert rx.prescriber_dea_number == "AD1234563"
        assert rx.prescriber_licence_number == "ME99881"
        assert {r.level for r in rx.checklist} == {"ok"}
        details = [e.detail for e in s.execute(select(AuditEvent)).scalars()]
        assert all(SECRET_RESULT not in d for d in details)
        actions = [e.action for e in s.execute(select(AuditEvent)).scalars()]
        assert audit_actions.PRESCRIPTION_ISSUED in actions
        assert audit_actions.PDMP_CHECK_RECORDED in actions


def test_refusal_names_every_failed_check_and_saves_nothing(practice) -> None:  # type: ignore[no-untyped-def]
    with practice.db.session() as s:
        pid = patient_with_signed_protocol(s, practice.physician, TODAY)
    with practice.db.session() as s, pytest.raises(PrescriptionRefused) as refused:
        issue_prescription(s, practice.physician, pid,
                           PrescriptionRequest(quantity=30, refills=6, remote=True))
    named = {reason.split(":")[0] for reason in refused.value.reasons}
    assert named == {"pdmp", "consent", "state_licence", "dea_registration", "refills",
                     "telemedicine"}
    with practice.db.session() as s:
        assert prescriptions_of(s, pid) == ()


def test_a_refused_attempt_is_audited_in_its_own_transaction(practice) -> None:  # type: ignore[no-untyped-def]
    """The refusal rolls back everything the attempt wrote, yet the attempt stays on record:
    who, which patient, and the failed checks by code (no sentence, no free text)."""
    with practice.db.session() as s:
        pid = patient_with_signed_protocol(s, practice.physician, TODAY)
    request = PrescriptionRequest(quantity=30, refills=6, remote=True, pharmacy=SECRET_RESULT)
    with pytest.raises(PrescriptionRefused) as refused:
        issue_prescription_recording_refusal(practice.db.session, practice.physician, pid, request)
    assert refused.value.codes == ["pdmp", "consent", "state_licence", "dea_registration",
                                   "refills", "telemedicine"]
    with practice.db.session() as s:
        assert prescriptions_of(s, pid) == ()
        events = s.execute(select(AuditEvent).where(
            AuditEvent.action == audit_actions.PRESCRIPTION_REFUSED)).scalars().all()
        assert [(e.user_name, e.patient_id) for e in events] == [
            (practice.physician.user_name, pid)]
        assert events[0].detail == ("failed checks: pdmp, consent, state_licence, "
                                    "dea_registration, refills, telemedicine")
        assert SECRET_RESULT not in events[0].detail
        assert verify_audit(s).is_intact


def test_only_physicians_issue_admins_record_lookups_as_designees(practice) -> None:  # type: ignore[no-untyped-def]
    with practice.db.session() as s:
        pid = ready_patient(practice, s)
        with pytest.raises(UserFacingError, match="Only physicians may issue"):
            issue_prescription(s, practice.admin, pid, PrescriptionRequest(quantity=30, refills=1))
        check = record_pdmp_check(s, practice.admin, pid, state="FL",
                                  not_checked_reason="E-FORCSE down for maintenance")
        assert check.is_designee and not check.consulted
        with pytest.raises(UserFacingError, match="either the result"):
            record_pdmp_check(s, practice.admin, pid, state="FL", result="x",
                              not_checked_reason="y")
        with pytest.raises(UserFacingError, match="future"):
            record_pdmp_check(s, practice.admin, pid, state="FL", result="fine",
                              checked_at=datetime.now(UTC) + timedelta(hours=1))
        with pytest.raises(UserFacingError, match="check digit"):
            save_credential(s, practice.physician, user_name=practice.physician.user_name,
                            kind=CredentialKind.DEA_REGISTRATION, state="FL",
                            number="AD1234564", expires_on=TODAY)


def test_warnings_must_be_acknowledged_and_are_audited(practice) -> None:  # type: ignore[no-untyped-def]
    with practice.db.session() as s:
        pid = ready_patient(practice, s)
        record_pdmp_check(s, practice.admin, pid, state="FL", not_checked_reason="outage")
        first = issue_prescription(s, practice.physician, pid,
                                   PrescriptionRequest(quantity=30, refills=0))
        # the next prescription has only a not-checked reason recorded after the first
        record_pdmp_check(s, practice.admin, pid, state="FL", not_checked_reason="outage again")
        request = PrescriptionRequest(quantity=30, refills=0)
        checklist = prescription_checklist_for(s, practice.physician, pid, request)
        assert [w.code for w in checklist.warnings] == ["pdmp"]
        with pytest.raises(PrescriptionRefused, match="warning not acknowledged"):
            issue_prescription(s, practice.physician, pid, request)
        second = issue_prescription(s, practice.physician, pid, request, acknowledged=["pdmp"])
        assert second.acknowledged_warnings == ("pdmp",) and first.id != second.id
        event = s.execute(select(AuditEvent).where(
            AuditEvent.action == audit_actions.PRESCRIPTION_WARNINGS_ACKNOWLEDGED)).scalar_one()
        assert event.detail == f"prescription {second.id}: pdmp"


def test_void_with_a_reason_never_edit(practice) -> None:  # type: ignore[no-untyped-def]
    with practice.db.session() as s:
        pid = ready_patient(practice, s)
        rx = issue_prescription(s, practice.physician, pid,
                                PrescriptionRequest(quantity=30, refills=1))
        with pytest.raises(UserFacingError, match="reason for voiding"):
            void_prescription(s, practice.physician, rx.id, "  ")
        voided = void_prescription(s, practice.physician, rx.id, "Wrong pharmacy")
        assert voided.is_void and voided.void_reason == "Wrong pharmacy"
        assert voided.content_hash == rx.content_hash
        with pytest.raises(UserFacingError, match="already voided"):
            void_prescription(s, practice.physician, rx.id, "again")
        with pytest.raises(UserFacingError, match="voided"):
            record_fill(s, practice.admin, rx.id, filled_on=TODAY, today=TODAY)
        details = [e.detail for e in s.execute(select(AuditEvent)).scalars()]
        assert all("Wrong pharmacy" not in d for d in details)


def test_fills_stop_after_five_refills_and_after_day_180(practice) -> None:  # type: ignore[no-untyped-def]
    with practice.db.session() as s:
        pid = ready_patient(practice, s)
        rx = issue_prescription(s, practice.physician, pid,
                                PrescriptionRequest(quantity=30, refills=5))
    issued = TODAY - timedelta(days=200)
    back_date(practice, rx.id, issued)
    with practice.db.session() as s:
        for n in range(6):  # the first fill and five refills, the last on day 180
            day = issued + timedelta(days=36 * n if n < 5 else 180)
            info = record_fill(s, practice.admin, rx.id, filled_on=day, today=TODAY)
        assert info.refills_used == 5 and info.refills_left == 0
        with pytest.raises(UserFacingError, match="All 5 refills"):
            record_fill(s, practice.admin, rx.id, filled_on=issued + timedelta(days=180),
                        today=TODAY)


def test_day_181_is_refused_and_the_worklist_lists_lapsed_refills(practice) -> None:  # type: ignore[no-untyped-def]
    with practice.db.session() as s:
        pid = ready_patient(practice, s)
        rx = issue_prescription(s, practice.physician, pid,
                                PrescriptionRequest(quantity=30, refills=3))
        s.get(Patient, pid).status = "active"  # type: ignore[union-attr]
    back_date(practice, rx.id, TODAY - timedelta(days=181))
    with practice.db.session() as s:
        record_fill(s, practice.admin, rx.id, filled_on=TODAY - timedelta(days=181), today=TODAY)
        with pytest.raises(UserFacingError, match=r"1306\.22"):
            record_fill(s, practice.admin, rx.id, filled_on=TODAY, today=TODAY)
        record_fill(s, practice.admin, rx.id, filled_on=TODAY - timedelta(days=1), today=TODAY)
        items = compliance_worklist(s, TODAY)
        lapsed = [i for i in items if i.kind is WorkKind.REFILLS_LAPSED]
        assert len(lapsed) == 1 and "2 refills left" in lapsed[0].message
        # the look-up was before this prescription: Florida wants a new one before the next
        assert any(i.kind is WorkKind.PDMP_DUE and i.patient_id == pid for i in items)


def test_worklist_consents_and_credentials(practice) -> None:  # type: ignore[no-untyped-def]
    with practice.db.session() as s:
        pid = patient_with_signed_protocol(s, practice.physician, TODAY)
        s.get(Patient, pid).status = "active"  # type: ignore[union-attr]
        s.flush()
        kinds = {i.kind for i in compliance_worklist(s, TODAY) if i.patient_id == pid}
        assert WorkKind.CONSENT_MISSING in kinds and WorkKind.PDMP_DUE in kinds
        ensure_consent_template(s, practice.physician)
        v1 = consent_templates(s)[-1]
        record_consent(s, practice.admin, pid, template_id=v1.id, signed_on=TODAY,
                       method="on_screen", today=TODAY)
        assert not {i.kind for i in compliance_worklist(s, TODAY) if i.patient_id == pid} & {
            WorkKind.CONSENT_MISSING, WorkKind.CONSENT_OLD_VERSION}
        add_consent_template(s, practice.physician, "Our consent", ["Paragraph one."])
        kinds = {i.kind for i in compliance_worklist(s, TODAY) if i.patient_id == pid}
        assert WorkKind.CONSENT_OLD_VERSION in kinds
        me = practice.physician.user_name
        save_credential(s, practice.physician, user_name=me, kind=CredentialKind.STATE_LICENCE,
                        state="NJ", number="25MA0001", expires_on=TODAY + timedelta(days=60))
        save_credential(s, practice.physician, user_name=me,
                        kind=CredentialKind.DEA_REGISTRATION, state="NJ", number="AD1234563",
                        expires_on=TODAY - timedelta(days=1))
        creds = {i.kind for i in compliance_worklist(s, TODAY) if i.user_name == me}
        assert creds == {WorkKind.CREDENTIAL_EXPIRING, WorkKind.CREDENTIAL_EXPIRED}
        with pytest.raises(UserFacingError, match="Only physicians"):
            add_consent_template(s, practice.admin, "Mine", ["Text."])


def test_remote_prescription_with_a_telemedicine_record(practice) -> None:  # type: ignore[no-untyped-def]
    with practice.db.session() as s:
        pid = ready_patient(practice, s)
        record_telemedicine(s, practice.physician, pid,
                            basis=TelemedicineBasis.IN_PERSON_EVALUATION, today=TODAY,
                            in_person_evaluation_on=TODAY - timedelta(days=30))
        rx = issue_prescription(s, practice.physician, pid,
                                PrescriptionRequest(quantity=30, refills=1, remote=True))
        assert rx.remote


def test_consent_form_and_prescription_pdfs(practice, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with practice.db.session() as s:
        pid = ready_patient(practice, s)
        rx = issue_prescription(s, practice.physician, pid,
                                PrescriptionRequest(quantity=30, refills=2, pharmacy="Demo Rx"))
        form = consent_form_pdf(s, practice.admin, pid, today=TODAY)
        printed = prescription_pdf(s, practice.physician, rx.id)
        void_prescription(s, practice.physician, rx.id, "Entered twice")
        voided = prescription_pdf(s, practice.physician, rx.id)
        mrn = s.get(Patient, pid).mrn  # type: ignore[union-attr]
    (tmp_path / "consent.pdf").write_bytes(form)
    (tmp_path / "rx.pdf").write_bytes(printed)
    form_text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(form)).pages)
    assert "EXAMPLE" in form_text and "Zoë" in form_text and mrn in form_text
    assert "Not FDA-approved" in form_text and "Patient's signature" in form_text
    rx_text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(printed)).pages)
    assert "30 (thirty)" in rx_text and "AD1234563" in rx_text and "Demo Rx" in rx_text
    assert "VOID" not in rx_text
    assert "VOID" in " ".join(p.extract_text() for p in PdfReader(io.BytesIO(voided)).pages)
    metadata = PdfReader(io.BytesIO(printed)).metadata or {}
    assert "Zoë" not in str(dict(metadata))


def test_issuing_signs_the_prescription_and_voiding_keeps_the_signature(practice) -> None:  # type: ignore[no-untyped-def]
    with practice.db.session() as s:
        pid = ready_patient(practice, s)
        rx = issue_prescription(s, practice.physician, pid,
                                PrescriptionRequest(quantity=30, refills=2))
        template = consent_templates(s)[-1]

    def valid() -> dict[tuple[str, int], bool]:
        return {(c.subject_kind, c.subject_id): c.is_valid
                for c in practice.db.content_signatures()}

    assert valid()[("prescription", rx.id)] is True
    assert valid()[("consent_template", template.id)] is True
    with practice.db.session() as s:
        void_prescription(s, practice.physician, rx.id, "Duplicate")
    assert valid()[("prescription", rx.id)] is True
    edit_outside_ketadesk(practice, f"UPDATE prescriptions SET refills = 5 WHERE id = {rx.id}")
    assert valid()[("prescription", rx.id)] is False


def test_printable_worklist(practice) -> None:  # type: ignore[no-untyped-def]
    from ketadesk.storage.compliance.compliance_worklist import worklist_pdf

    with practice.db.session() as s:
        pid = patient_with_signed_protocol(s, practice.physician, TODAY)
        s.get(Patient, pid).status = "active"  # type: ignore[union-attr]
        mrn = s.get(Patient, pid).mrn  # type: ignore[union-attr]
        data = worklist_pdf(s, practice.admin, TODAY)
        assert s.execute(select(AuditEvent).where(
            AuditEvent.action == audit_actions.PRINT,
            AuditEvent.detail.like("compliance worklist%"))).scalar_one()
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages).split())
    assert mrn in text and "Consent missing" in text and "PDMP look-up due" in text


def test_number_in_words_and_long_date() -> None:
    from ketadesk.reports.compliance_pdf import long_date, number_in_words

    assert number_in_words(30) == "thirty"
    assert number_in_words(24) == "twenty-four"
    assert number_in_words(120) == "one hundred twenty"
    assert number_in_words(12.5) == "twelve and a half"
    assert number_in_words(2.25) == ""
    assert long_date(date(2026, 6, 5)) == "June 5, 2026"


def test_new_jersey_practice_setting_decides_the_lookup(practice) -> None:  # type: ignore[no-untyped-def]
    from ketadesk.storage.practice.settings_store import set_setting

    with practice.db.session() as s:
        pid = patient_with_signed_protocol(s, practice.physician, TODAY)
        patient = s.get(Patient, pid)
        assert patient is not None
        patient.state, patient.county = "NJ", "Bergen"
        s.flush()
        ensure_consent_template(s, practice.physician)
        record_consent(s, practice.admin, pid, template_id=consent_templates(s)[-1].id,
                       signed_on=TODAY, method="paper", today=TODAY)
        for kind, number in ((CredentialKind.STATE_LICENCE, "25MA1"),
                             (CredentialKind.DEA_REGISTRATION, "BD7654329")):
            save_credential(s, practice.physician, user_name=practice.physician.user_name,
                            kind=kind, state="NJ", number=number,
                            expires_on=TODAY + timedelta(days=400))
        request = PrescriptionRequest(quantity=30, refills=1)

        def pdmp_level(req: PrescriptionRequest = request) -> str:
            checklist = prescription_checklist_for(s, practice.physician, pid, req)
            return next(str(r.level) for r in checklist.results if r.code == "pdmp")

        assert pdmp_level() == "error"  # default: first time, then quarterly
        set_setting(s, practice.physician, "nj_ketamine_pdmp_lookup", "rule_only")
        assert pdmp_level() == "ok"
        assert pdmp_level(PrescriptionRequest(30, 1, misuse_concern=True)) == "error"
        with pytest.raises(UserFacingError, match="choose one of"):
            set_setting(s, practice.physician, "nj_ketamine_pdmp_lookup", "sometimes")
        rx = issue_prescription(s, practice.physician, pid, request)
        assert rx.prescriber_dea_number == "BD7654329"

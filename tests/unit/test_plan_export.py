"""Treatment plans exported from a real encrypted practice database and read back with pypdf.

Patients, reviews and protocols are made through the real services (patients, interaction
reviews, protocols); nothing is mocked.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader, PdfWriter
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.core.demographics import PatientDemographics
from ketadesk.core.dosing_calendar import dosing_calendar
from ketadesk.core.errors import UserFacingError
from ketadesk.core.protocol_templates import builtin_templates, confirm_template, find_template
from ketadesk.core.protocols import Protocol
from ketadesk.models.audit import AuditEvent
from ketadesk.models.plan_exports import SignedPlanContent
from ketadesk.reports import plan_pdf
from ketadesk.reports.plan_document import plan_content_hash, shown_calendar_rows
from ketadesk.reports.plan_pdf import render_plan_pdf
from ketadesk.reports.plan_pdf_canvas import DRAFT_WATERMARK
from ketadesk.reports.plan_verify import extract_plan_text, read_plan_identity
from ketadesk.storage.patients.patient_medications import (
    add_medication,
)
from ketadesk.storage.patients.patients import (
    add_vitals,
    change_status,
    create_patient,
)
from ketadesk.storage.plans import plan_export as pe
from ketadesk.storage.practice.practice_limits_store import (
    set_practice_limits,
)
from ketadesk.storage.practice.settings_store import set_setting
from ketadesk.storage.protocols import protocols as protocol_store
from ketadesk.storage.protocols.protocol_versions import (
    active_signed_protocol,
)
from ketadesk.storage.reviews.interaction_reviews import DecisionInput, run_review, sign_review
from ketadesk.storage.security.audit_log import verify_audit
from tests.both_back_ends import edit_outside_ketadesk
from tests.unit.signed_protocol_patients import generous_limits


@pytest.fixture
def practice(practice_on: Any) -> Any:
    """Each test on a practice file and on a practice server (``tests/conftest.py``)."""
    return practice_on


TODAY = datetime.now(UTC).date()
PATIENT_FIRST, PATIENT_LAST = "Zoë", "Ñúñez-Łukasiewicz"
PATIENT_NAME = f"{PATIENT_FIRST} {PATIENT_LAST}"
UNKNOWN_REMEDY = "Moonpetal calm tincture"


def confirmed(name: str = "Microdose, sublingual") -> Protocol:
    template = confirm_template(find_template(name, builtin_templates()))
    return replace(template.protocol, review_date=TODAY + timedelta(days=20))


def set_up_practice(session: Any, physician: Any) -> None:
    set_setting(session, physician, "practice_name", "Harbor Light Psychiatry")
    set_setting(session, physician, "practice_address", "1200 Bayshore Drive, Tampa, FL 33606")
    set_setting(session, physician, "practice_phone", "(813) 555-0142")
    set_practice_limits(session, physician, generous_limits())


def new_patient(
    session: Any, actor: Any, first: str = PATIENT_FIRST, last: str = PATIENT_LAST
) -> int:
    draft = PatientDemographics(
        first_name=first,
        last_name=last,
        dob=date(1984, 3, 9),
        sex="female",
        state="FL",
        county="Hillsborough",
        sitter_name="Søren Ødegård",
        sitter_phone="(813) 555-0199",
        emergency_contact_name="Mateo Núñez",
        emergency_contact_phone="(813) 555-0177",
        emergency_contact_relationship="spouse",
    )
    return create_patient(session, actor, draft, today=TODAY, allow_duplicate=True).id


def chart(session: Any, physician: Any, patient_id: int) -> None:
    change_status(session, physician, patient_id, "active", "Starting treatment (test)")
    add_vitals(
        session, physician, patient_id,
        measured_at=datetime.now(UTC) - timedelta(days=2),
        systolic=124, diastolic=78, heart_rate=70, weight_kg=72.5,
    )
    add_medication(session, physician, patient_id, "tramadol", dose_text="50 mg",
                   frequency_text="twice daily")
    add_medication(session, physician, patient_id, "lamotrigine", dose_text="100 mg",
                   frequency_text="daily")
    add_medication(session, physician, patient_id, UNKNOWN_REMEDY)


def sign_everything(session: Any, physician: Any, patient_id: int) -> int:
    """Sign an interaction review (decisions where needed) and a protocol; return version id."""
    view = run_review(session, patient_id)
    decisions = [
        DecisionInput(
            f.flag.carry_forward_key,
            "continue_with_monitoring",
            note="Blood pressure before each dose.",
            override_reason="Benefit judged to outweigh the risk (test)."
            if f.flag.severity == "contraindicated" else "",
        )
        for f in view.flags
        if f.needs_decision
    ]
    sign_review(session, physician, patient_id, decisions, read_by_physician=view.not_checked)
    protocol = confirmed()
    draft = protocol_store.save_draft(session, physician, patient_id, protocol, TODAY)
    check = protocol_store.signing_check(session, physician, patient_id, protocol, TODAY)
    assert not check.errors, [m.message for m in check.errors]
    signed = protocol_store.sign_version(
        session, physician, draft.version_id,
        acknowledged_warnings=[m.code for m in check.warnings], today=TODAY,
    )
    return signed.version_id


@pytest.fixture
def signed_patient(practice: Any) -> int:
    with practice.db.session() as s:
        set_up_practice(s, practice.physician)
        pid = new_patient(s, practice.physician)
        chart(s, practice.physician, pid)
        sign_everything(s, practice.physician, pid)
    return pid


@pytest.fixture
def exported(practice: Any, signed_patient: int, tmp_path: Path) -> tuple[Path, pe.ExportOutcome]:
    path = tmp_path / "plan.pdf"
    outcome = pe.export_plan_to_file(practice.db, practice.admin, signed_patient, path)
    return path, outcome


def test_the_exported_plan_shows_every_section_with_the_chart_data(
    practice: Any, signed_patient: int, exported: tuple[Path, pe.ExportOutcome]
) -> None:
    path, outcome = exported
    assert outcome.is_written and outcome.path == path and outcome.version == 1
    text = extract_plan_text(path.read_bytes())
    for heading in (
        "Home ketamine treatment plan", "Patient", "Prescribing physician",
        "Support on dosing days", "Your prescription", "Dosing calendar", "Monitoring plan",
        "Hold parameters", "Safety instructions", "Medication and interaction review",
        "Important", "Signature",
    ):
        assert heading in text, heading
    assert PATIENT_NAME in text  # Unicode names extract intact
    assert "Søren Ødegård" in text and "Mateo Núñez" in text
    assert "Harbor Light Psychiatry" in text and "(813) 555-0142" in text
    assert "Dr. Rowan Quill" in text
    with practice.db.session() as s:
        mrn = s.execute(select(pe.Patient.mrn).where(pe.Patient.id == signed_patient)).scalar()
    assert mrn in text
    assert "not FDA-approved" in text and "Individual results vary" in text
    assert "911" in text and "988" in text
    assert UNKNOWN_REMEDY in text  # the unrecognised entry is listed ...
    # ... as read by the physician who signed the review, not as checked by the software.
    assert "Read by your physician, not checked by the software." in text
    assert "Dr. Rowan Quill read each of them" in " ".join(text.split())
    assert "Not checked." not in text
    assert "Blood pressure before the dose above 140/90 mmHg" in text  # hold parameter
    with practice.db.session() as s:
        doc = pe.plan_for_patient(s, signed_patient)
    assert doc.review.read_by_physician == doc.review.not_checked
    assert any(UNKNOWN_REMEDY in item for item in doc.review.read_by_physician)
    flags = {flag.severity: flag for flag in doc.review.flags}
    assert set(flags) == {"Major", "Minor"}  # tramadol and lamotrigine
    # The decision as a category in patient words; the physician's note is not printed.
    assert flags["Major"].decision == "Continue ketamine, with the extra checks in this plan"
    assert "Blood pressure before each dose." not in text
    assert flags["Minor"].decision.startswith("No change needed")
    flat = " ".join(text.split())
    for flag in doc.review.flags:
        assert flag.title.split(":")[0] in flat
        assert " ".join(flag.decision.split()[:3]) in flat


def test_the_calendar_is_the_protocols_dosing_calendar(
    practice: Any, signed_patient: int, exported: tuple[Path, pe.ExportOutcome]
) -> None:
    with practice.db.session() as s:
        version = active_signed_protocol(s, signed_patient)
        assert version is not None and version.weight is not None
        doc = pe.plan_for_patient(s, signed_patient)
    sessions = dosing_calendar(version.protocol, version.start_date, version.weight.kg)
    dosing_rows = [row for row in doc.calendar if row.dose_mg is not None]
    assert [(r.day, r.dose_mg, r.mg_per_kg) for r in dosing_rows] == [
        (s.date, s.dose_mg, s.mg_per_kg) for s in sessions
    ]
    assert doc.calendar_weeks_shown == 4  # the practice setting's default
    review_day = version.protocol.review_date
    assert review_day is not None
    assert any(r.day == review_day and pe.EVENT_PROTOCOL_REVIEW in r.events for r in doc.calendar)
    text = extract_plan_text(exported[0].read_bytes())
    shown = shown_calendar_rows(doc)
    assert shown and len(shown) < len(doc.calendar)
    for row in shown:
        assert f"{row.day:%a} {row.day:%m/%d/%Y}" in text  # the default US style
    hidden = doc.calendar[len(shown)]
    assert f"{hidden.day:%a} {hidden.day.day} {hidden.day:%b %Y}" not in text


def test_weeks_printed_follow_the_practice_setting(practice: Any, signed_patient: int) -> None:
    with practice.db.session() as s:
        set_setting(s, practice.physician, "plan_calendar_weeks", 2)
    with practice.db.session() as s:
        doc = pe.plan_for_patient(s, signed_patient)
    assert doc.calendar_weeks_shown == 2
    assert all(r.day < doc.calendar[0].day + timedelta(days=14) for r in shown_calendar_rows(doc))


def test_the_hash_verifies_and_the_export_is_audited(
    practice: Any, signed_patient: int, exported: tuple[Path, pe.ExportOutcome]
) -> None:
    path, outcome = exported
    pdf = path.read_bytes()
    with practice.db.session() as s:
        doc = pe.plan_for_patient(s, signed_patient)
        printed = read_plan_identity(pdf).content_hash
        assert printed == plan_content_hash(doc) == outcome.content_hash
        result = pe.verify_plan_file(s, pdf, actor=practice.physician)
    assert result.matches and result.is_current, result.message
    assert result.version == 1 and result.patient_id == signed_patient
    assert result.signed_by == "Dr. Rowan Quill"
    with practice.db.session() as s:
        [stored] = s.execute(select(SignedPlanContent)).scalars().all()
        assert stored.content_hash == outcome.content_hash
        [event] = s.execute(
            select(AuditEvent).where(AuditEvent.action == audit_actions.PLAN_EXPORTED)
        ).scalars().all()
        assert event.user_name == practice.admin.user_name
        assert event.patient_id == signed_patient
        assert outcome.file_sha256 is not None and outcome.file_sha256 in event.detail
        assert "version 1" in event.detail
        assert PATIENT_FIRST not in event.detail and PATIENT_LAST not in event.detail
        verified = s.execute(
            select(AuditEvent).where(AuditEvent.action == audit_actions.PLAN_VERIFIED)
        ).scalars().all()
        assert len(verified) == 1 and "matches" in verified[0].detail
        assert verify_audit(s).is_intact


def test_a_plan_still_verifies_after_the_chart_changes_but_a_changed_plan_does_not(
    practice: Any, signed_patient: int, exported: tuple[Path, pe.ExportOutcome]
) -> None:
    pdf = exported[0].read_bytes()
    with practice.db.session() as s:
        set_setting(s, practice.physician, "practice_phone", "(813) 555-0000")
    with practice.db.session() as s:
        assert pe.verify_plan_file(s, pdf).matches  # the stored plan, not today's chart
        changed = pe.plan_for_patient(s, signed_patient)
    assert plan_content_hash(changed) != read_plan_identity(pdf).content_hash
    with practice.db.session() as s:
        result = pe.verify_plan_file(s, render_plan_pdf(changed))
    assert not result.matches and "matches no signed protocol version" in result.message


def test_a_forged_dose_under_the_genuine_hash_fails(
    practice: Any,
    signed_patient: int,
    exported: tuple[Path, pe.ExportOutcome],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with practice.db.session() as s:
        doc = pe.plan_for_patient(s, signed_patient)
    rows = list(doc.calendar)
    rows[0] = dataclasses.replace(rows[0], dose_mg=250.0)
    forged_doc = dataclasses.replace(doc, calendar=tuple(rows))
    genuine = plan_content_hash(doc)
    monkeypatch.setattr(plan_pdf, "plan_content_hash", lambda _doc: genuine)
    forged = render_plan_pdf(forged_doc)
    monkeypatch.undo()
    assert read_plan_identity(forged).content_hash == genuine
    with practice.db.session() as s:
        result = pe.verify_plan_file(s, forged)
    assert not result.matches and "printed pages differ" in result.message


def test_a_tampered_file_fails_verification(
    practice: Any, exported: tuple[Path, pe.ExportOutcome]
) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(exported[0].read_bytes())))
    writer.add_metadata({"/KetaDeskPlanHash": "ab" * 32})
    out = io.BytesIO()
    writer.write(out)
    with practice.db.session() as s:
        result = pe.verify_plan_file(s, out.getvalue())
    assert not result.matches and "altered" in result.message


def test_an_encrypted_plan_needs_its_password(
    practice: Any, signed_patient: int, tmp_path: Path
) -> None:
    path = tmp_path / "locked.pdf"
    pe.export_plan_to_file(practice.db, practice.admin, signed_patient, path,
                           password="blue tractor 7")
    pdf = path.read_bytes()
    assert pe.pdf_needs_password(pdf)
    with pytest.raises(UserFacingError, match="password"):
        extract_plan_text(pdf)
    assert PATIENT_NAME in extract_plan_text(pdf, "blue tractor 7")
    with practice.db.session() as s:
        with pytest.raises(UserFacingError, match="password-protected"):
            pe.verify_plan_file(s, pdf)
        with pytest.raises(UserFacingError, match="does not open"):
            pe.verify_plan_file(s, pdf, "wrong password")
        assert pe.verify_plan_file(s, pdf, "blue tractor 7").matches
        [event] = s.execute(
            select(AuditEvent).where(AuditEvent.action == audit_actions.PLAN_EXPORTED)
        ).scalars().all()
        assert "encrypted yes" in event.detail and "blue tractor" not in event.detail


def test_a_draft_only_patient_gets_the_clear_message(practice: Any, tmp_path: Path) -> None:
    with practice.db.session() as s:
        set_up_practice(s, practice.physician)
        pid = new_patient(s, practice.physician, "Ines", "Draftwell")
        chart(s, practice.physician, pid)
        protocol_store.save_draft(s, practice.physician, pid, confirmed(), TODAY)
    with practice.db.session() as s, pytest.raises(UserFacingError) as error:
        pe.plan_for_patient(s, pid)
    assert error.value.message == (
        "This patient has no signed protocol; a plan can be exported only from a signed version."
    )
    with pytest.raises(UserFacingError, match="no signed protocol"):
        pe.export_plan_to_file(practice.db, practice.admin, pid, tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()
    # A physician may preview the draft, watermarked; an admin may not.
    preview = pe.export_draft_preview(practice.db, practice.physician, pid, tmp_path / "d.pdf")
    text = extract_plan_text(preview.read_bytes())
    assert DRAFT_WATERMARK in text and "Not signed" in text
    with pytest.raises(UserFacingError, match="Only physicians"):
        pe.export_draft_preview(practice.db, practice.admin, pid, tmp_path / "e.pdf")
    with practice.db.session() as s:
        # A draft is never recorded as a plan, so its printout never verifies.
        assert s.execute(select(SignedPlanContent)).first() is None
        assert not pe.verify_plan_file(s, preview.read_bytes()).matches


def test_batch_export_writes_signed_plans_and_skips_the_rest_with_reasons(
    practice: Any, signed_patient: int, tmp_path: Path
) -> None:
    with practice.db.session() as s:
        other = new_patient(s, practice.physician, "Noor", "Unsigned")
    progress: list[tuple[int, int]] = []
    summary = pe.export_plans(
        practice.db, practice.admin, [signed_patient, other], tmp_path,
        pattern="{last_name}/{first_name}_{mrn}_v{version}", workers=1,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert len(summary.written) == 1 and len(summary.skipped) == 1
    assert summary.skipped[0].patient_id == other
    assert summary.skipped[0].reason == pe.NO_SIGNED_PROTOCOL
    assert summary.describe() == "Written 1, skipped 1 (no signed protocol: 1)."
    [written] = summary.written
    assert written.path is not None and written.path.parent == tmp_path
    assert written.path.name.startswith("Ñúñez-Łukasiewicz_Zoë_KD-")
    assert written.path.name.endswith("_v1.pdf")
    assert progress[-1] == (1, 1)
    # Exporting again skips the existing file instead of overwriting it.
    again = pe.export_plans(practice.db, practice.admin, None, tmp_path,
                            pattern="{last_name}/{first_name}_{mrn}_v{version}", workers=1)
    assert [o.reason for o in again.skipped] == ["A file with this name already exists."]


@pytest.mark.parametrize(
    ("pattern", "values", "expected"),
    [
        ("{last_name}_{mrn}_plan_v{version}.pdf",
         {"last_name": "Ñúñez-Łukasiewicz", "mrn": "KD-00000018", "version": "2"},
         "Ñúñez-Łukasiewicz_KD-00000018_plan_v2.pdf"),
        ("../{last_name}", {"last_name": "..\\..\\etc"}, "_.._.._etc.pdf"),
        ("{last_name}", {"last_name": "CON"}, "plan_CON.pdf"),
        ("{last_name}: {mrn}?", {"last_name": "O'Brien  Smith", "mrn": "KD-1"},
         "O'Brien_Smith__KD-1_.pdf"),
    ],
)
def test_file_names_are_sanitised(pattern: str, values: dict[str, str], expected: str) -> None:
    name = pe.plan_file_name(pattern, values)
    assert name == expected
    assert "/" not in name and "\\" not in name


def test_unknown_pattern_fields_are_refused_in_words() -> None:
    with pytest.raises(UserFacingError, match="only these fields"):
        pe.plan_file_name("{dob}_{mrn}", {"mrn": "KD-1"})
    with pytest.raises(UserFacingError, match="unmatched"):
        pe.check_file_pattern("{mrn")


def test_admins_export_but_need_no_signing_rights(practice: Any, signed_patient: int) -> None:
    with practice.db.session() as s:
        batch = pe.plan_export_batch(s, practice.admin, None)
    assert [p.patient_id for p in batch.planned] == [signed_patient]
    assert "Zoë" not in repr(batch.planned[0])


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_DATE_SHAPES = {
    "us": r"\b\d{2}/\d{2}/\d{4}\b",
    "iso": r"\b\d{4}-\d{2}-\d{2}\b",
    "long": r"\b(?:" + "|".join(_MONTHS) + r") \d{1,2}, \d{4}\b",
    "day_month_abbreviated": r"\b\d{1,2} (?:" + "|".join(m[:3] for m in _MONTHS) + r") \d{4}\b",
}


def _written(day: date, style: str) -> str:
    if style == "iso":
        return day.isoformat()
    if style == "long":
        return f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"
    return f"{day:%m/%d/%Y}"


@pytest.mark.parametrize("style", ["us", "iso", "long"])
def test_the_patients_plan_has_patient_words_not_clinician_shorthand(
    practice: Any, tmp_path: Path, style: str
) -> None:
    """Defect 7: no unmarked decision note, no diazepam-equivalent figures and no condition
    line in chart shorthand in the PDF the patient and their sitter read; a note the physician
    marked "for the patient" is printed; every date is in the practice's chosen style."""
    import re

    from ketadesk.storage.patients.patients import add_condition

    with practice.db.session() as s:
        set_up_practice(s, practice.physician)
        if style != "us":  # US is the default: nothing to set
            set_setting(s, practice.physician, "plan_date_format", style)
        pid = new_patient(s, practice.physician)
        chart(s, practice.physician, pid)
        add_medication(s, practice.physician, pid, "Ativan 1 mg bid")
        add_condition(s, practice.physician, pid, "hx of psychosis 2019 / denies SI")
        add_condition(s, practice.physician, pid, "s/p ORIF L wrist 2018")  # not recognised
        view = run_review(s, pid)
        needing = [f for f in view.flags if f.needs_decision]
        decisions = [
            DecisionInput(
                f.flag.carry_forward_key, "adjust_protocol",
                note="Bring all your medicine bottles to your next visit."
                if index == 0 else "pt minimising benzo use; recheck PDMP",
                override_reason="Benefit judged to outweigh the risk (test)."
                if f.flag.severity == "contraindicated" else "",
                note_for_patient=index == 0,
            )
            for index, f in enumerate(needing)
        ]
        assert len(decisions) >= 2
        assert any("diazepam-equivalent" in f.flag.title for f in view.flags)
        sign_review(s, practice.physician, pid, decisions, read_by_physician=view.not_checked)
        protocol = confirmed()
        draft = protocol_store.save_draft(s, practice.physician, pid, protocol, TODAY)
        check = protocol_store.signing_check(s, practice.physician, pid, protocol, TODAY)
        protocol_store.sign_version(s, practice.physician, draft.version_id,
                                    acknowledged_warnings=[m.code for m in check.warnings],
                                    today=TODAY)
    path = tmp_path / "plan.pdf"
    pe.export_plan_to_file(practice.db, practice.physician, pid, path)
    flat = " ".join(extract_plan_text(path.read_bytes()).split())
    for clinician_only in ("recheck PDMP", "minimising", "diazepam", "mg/day", "hx of psychosis",
                           "ORIF", "denies SI", "on the chart as", "bid", "(negated)"):
        assert clinician_only not in flat, clinician_only
    assert "Note from your physician: Bring all your medicine bottles to your next visit." in flat
    assert "(your medicine: lorazepam)" in flat
    assert "Mateo Núñez (spouse) · (813) 555-0177" in flat  # defect 16: the relationship
    assert "Psychotic disorder: ketamine may worsen psychosis" in flat  # the KB name
    assert "1 health condition on your chart" in flat  # the unrecognised line, not its text
    assert "Read by your physician, not checked by the software." in flat
    assert "Your physician changed your ketamine plan because of this" in flat
    # One date style throughout the plan: the chosen one, and no date written another way.
    for other, shape in _DATE_SHAPES.items():
        if other != style:
            assert re.findall(shape, flat) == [], other
    assert f"weeks from {_written(TODAY, style)}" in flat
    assert f"DOB {_written(date(1984, 3, 9), style)}" in flat  # the running header
    assert len(re.findall(_DATE_SHAPES[style], flat)) >= 10  # calendar, review, signature...
    _save_pages(path, style)


def _save_pages(path: Path, name: str = "plan") -> None:
    """PNG pages for a person to look at, only when KETADESK_SHOTS names a folder."""
    import os
    import shutil
    import subprocess

    folder = os.environ.get("KETADESK_SHOTS")
    if folder and shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "60", str(path), f"{folder}/{name}"], check=True)


def test_signing_stores_the_physicians_signature_over_the_signed_content(
    practice: Any, signed_patient: int
) -> None:
    checks = practice.db.content_signatures()
    kinds = {c.subject_kind for c in checks}
    assert kinds == {"protocol_version", "interaction_review"}
    assert all(c.is_valid and c.signed_by == practice.physician.user_name for c in checks)
    # Someone with the database key changes the signed protocol's stored hash by SQL.
    version_id = next(c.subject_id for c in checks if c.subject_kind == "protocol_version")
    edit_outside_ketadesk(
        practice,
        f"UPDATE protocol_versions SET content_hash = '{'0' * 64}' WHERE id = {version_id}",
    )
    after = {(c.subject_kind, c.subject_id): c.is_valid for c in practice.db.content_signatures()}
    assert after[("protocol_version", version_id)] is False
    assert after[("interaction_review", next(
        c.subject_id for c in checks if c.subject_kind == "interaction_review"))] is True

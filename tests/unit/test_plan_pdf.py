"""The treatment-plan PDF, read back with pypdf: content, identity, encryption, metadata, fonts."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DictionaryObject

from ketadesk.core.errors import UserFacingError
from ketadesk.reports import plan_pdf
from ketadesk.reports.plan_batch import JobStatus, PlanJob, render_plan_files
from ketadesk.reports.plan_document import (
    CalendarRow,
    MonitoringPlanText,
    PatientBlock,
    PlanDocument,
    PracticeInfo,
    PrescriberBlock,
    ProtocolSummary,
    ReviewFlag,
    ReviewSummary,
    plan_content_hash,
    shown_calendar_rows,
)
from ketadesk.reports.plan_pdf import render_plan_pdf
from ketadesk.reports.plan_pdf_canvas import DRAFT_WATERMARK
from ketadesk.reports.plan_verify import (
    extract_plan_text,
    printed_plan_matches,
    read_plan_identity,
)

PATIENT_NAME = "Zoë Ñúñez-Łukasiewicz"
SITTER_NAME = "Søren Ødegård"
START = date(2026, 12, 1)

_SEVERITIES = ("Major", "Moderate", "Minor")
_MEDICATIONS = (
    "sertraline",
    "bupropion XL",
    "lamotrigine",
    "clonazepam",
    "trazodone",
    "lisinopril",
    "amlodipine",
    "metoprolol succinate",
    "levothyroxine",
    "atorvastatin",
    "omeprazole",
    "ondansetron",
    "gabapentin",
    "hydroxyzine",
    "melatonin",
    "St John's wort",
    "cetirizine",
    "propranolol",
    "zolpidem",
    "tramadol",
    "naltrexone",
    "lithium carbonate",
    "quetiapine",
    "modafinil",
    "pseudoephedrine",
)


def synthetic_plan(
    *, weeks: int = 12, weeks_shown: int = 12, flags: int = 25, is_draft: bool = False
) -> PlanDocument:
    """A realistic, wholly synthetic plan: twice-weekly doses with monitoring days."""
    rows: list[CalendarRow] = []
    for week in range(weeks):
        monday = START + timedelta(days=7 * week)
        dose = 50.0 + min(week, 4) * 12.5
        for offset, events in ((0, ("Blood pressure before and 1 h after dose",)), (3, ())):
            rows.append(
                CalendarRow(
                    day=monday + timedelta(days=offset),
                    dose_mg=dose,
                    mg_per_kg=round(dose / 72.5, 2),
                    events=events,
                )
            )
        if week % 4 == 3:
            rows.append(
                CalendarRow(
                    day=monday + timedelta(days=5),
                    dose_mg=None,
                    mg_per_kg=None,
                    events=("PHQ-9 and GAD-7 questionnaires", "Video visit with Dr Ilić"),
                )
            )
    review_flags = tuple(
        ReviewFlag(
            severity=_SEVERITIES[i % 3],
            title=f"Ketamine + {_MEDICATIONS[i % len(_MEDICATIONS)]}: "
            + ("additive sedation and slowed breathing" if i % 2 else "raised blood pressure"),
            decision=(
                "Continue; patient to take the evening dose at least 4 hours after ketamine "
                "and the sitter to check alertness before the patient sleeps."
                if i % 2
                else "Continue with blood pressure checks before and after each dose."
            ),
        )
        for i in range(flags)
    )
    return PlanDocument(
        plan_id="PLN-2026-000417",
        version=3,
        title="Home ketamine treatment plan",
        practice=PracticeInfo(
            name="Harbor Light Psychiatry",
            address="1200 Bayshore Drive, Suite 4\nTampa, FL 33606",
            phone="(813) 555-0142",
        ),
        patient=PatientBlock(
            full_name=PATIENT_NAME,
            date_of_birth=date(1987, 4, 19),
            mrn="MRN-004217",
            state="FL",
            sitter_name=SITTER_NAME,
            sitter_phone="(813) 555-0199",
            emergency_contact_name="Mateo Núñez",
            emergency_contact_phone="(813) 555-0177",
        ),
        prescriber=PrescriberBlock(
            full_name="Dr Ana Ilić, MD", npi="1234567893", licence_states=("FL", "NJ")
        ),
        protocol=ProtocolSummary(
            indication="Treatment-resistant depression",
            kind="Standard",
            route="Sublingual (hold under the tongue for 15 minutes, then spit)",
            formulation="compounded rapid-dissolve tablet (troche)",
            strength="50 mg per tablet",
            dose_mg=100.0,
            mg_per_kg=1.38,
            weight_kg=72.5,
            weight_date=date(2026, 11, 20),
            frequency="Twice a week (Tuesday and Friday), at least 72 hours apart",
            titration_steps=(
                "Week 1: 50 mg per dose",
                "Week 2: 62.5 mg per dose if blood pressure stayed within limits",
                "Week 3: 75 mg per dose",
                "Week 4: 87.5 mg per dose",
                "Week 5 onward: 100 mg per dose",
            ),
            max_dose_mg=100.0,
            duration="12 weeks, then review",
            supply_per_30_days="18 tablets",
            refills=2,
            sig=(
                "Dissolve the prescribed number of tablets under the tongue on dosing days as "
                "shown in the calendar; hold 15 minutes, spit, do not swallow. Sitter present."
            ),
        ),
        calendar=tuple(rows),
        calendar_weeks_shown=weeks_shown,
        monitoring=MonitoringPlanText(
            lines=(
                "Measure blood pressure (mmHg) and pulse before each dose and 1 hour after.",
                "Complete the PHQ-9 and GAD-7 questionnaires every 4 weeks.",
                "Report any urinary pain or blood to the practice the same day.",
            ),
            hold_parameters=(
                "Blood pressure above 160/100 mmHg before the dose",
                "Pulse above 110 beats per minute at rest",
                "New chest pain, shortness of breath or severe headache",
                "No sitter available for the whole session",
            ),
        ),
        review=ReviewSummary(
            flags=review_flags,
            not_checked=("Ashwagandha root extract", "“Calm Blend” herbal tea (unknown herbs)"),
            reviewed_on=date(2026, 11, 24),
            signed_by="Dr Ana Ilić, MD",
        ),
        signed_by=None if is_draft else "Dr Ana Ilić, MD",
        signed_at=None if is_draft else datetime(2026, 11, 24, 15, 5, tzinfo=UTC),
        is_draft=is_draft,
    )


@pytest.fixture(scope="module")
def plan() -> PlanDocument:
    return synthetic_plan()


@pytest.fixture(scope="module")
def pdf(plan: PlanDocument) -> bytes:
    return render_plan_pdf(plan)


@pytest.fixture(scope="module")
def text(pdf: bytes) -> str:
    return extract_plan_text(pdf)


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_every_section_is_present(text: str) -> None:
    for heading in (
        "Harbor Light Psychiatry",
        "Home ketamine treatment plan",
        "Version 3",
        "Patient",
        "Prescribing physician",
        "Support on dosing days",
        "Your prescription",
        "Dosing calendar",
        "Monitoring plan",
        "Hold parameters",
        "Safety instructions",
        "Medication and interaction review",
        "Signature",
    ):
        assert heading in text, heading


def test_safety_instructions_cover_sitter_driving_alcohol_and_crisis_lines(text: str) -> None:
    flat = _flat(text)
    for needle in (
        "Have your sitter with you",
        "No driving until the next day",
        "No alcohol",
        "If you miss a dose",
        "When to call your care team",
        "911",
        "988",
        "Suicide & Crisis Lifeline",
    ):
        assert needle in flat, needle


def test_disclaimer_is_always_printed(text: str) -> None:
    flat = _flat(text)
    assert (
        "Compounded ketamine is not FDA-approved for depression, anxiety, PTSD or chronic pain"
        in flat
    )
    assert "Individual results vary" in flat


def test_unicode_names_extract_intact(text: str) -> None:
    assert PATIENT_NAME in text
    assert SITTER_NAME in text
    assert "Dr Ana Ilić, MD" in text


def test_calendar_rows_match_the_document(plan: PlanDocument, text: str) -> None:
    flat = _flat(text)
    rows = shown_calendar_rows(plan)
    assert len(rows) == len(plan.calendar)  # 12 weeks shown of 12
    position = 0
    for row in rows:
        label = f"{row.day:%a} {row.day.day} {row.day:%b %Y}"
        found = flat.find(label, position)
        assert found >= 0, f"calendar day {row.day} missing or out of order"
        dose = "No dose" if row.dose_mg is None else f"{row.dose_mg:g} mg"
        next_label_at = found + len(label)
        assert dose in flat[next_label_at : next_label_at + 40], row.day
        position = next_label_at
    assert flat.count("☐") == len(rows)


def test_calendar_shows_only_the_configured_weeks() -> None:
    doc = synthetic_plan(weeks=12, weeks_shown=4)
    text = _flat(extract_plan_text(render_plan_pdf(doc)))
    shown = shown_calendar_rows(doc)
    assert 0 < len(shown) < len(doc.calendar)
    assert all(row.day < START + timedelta(days=28) for row in shown)
    last_shown, first_hidden = shown[-1].day, doc.calendar[len(shown)].day
    assert f"{last_shown:%a} {last_shown.day} {last_shown:%b %Y}" in text
    assert f"{first_hidden:%a} {first_hidden.day} {first_hidden:%b %Y}" not in text
    assert "Weeks 1–4 of 12" in text


def test_every_review_flag_and_not_checked_entry_is_listed(plan: PlanDocument, text: str) -> None:
    flat = _flat(text)
    for flag in plan.review.flags:
        assert _flat(flag.title) in flat
    for entry in plan.review.not_checked:
        assert entry in flat
    assert "25 findings, 2 entries not checked" in flat
    assert "Reviewed 24 Nov 2026 by Dr Ana Ilić, MD" in flat


def test_every_page_has_a_numbered_footer_with_plan_id_and_hash(
    plan: PlanDocument, pdf: bytes
) -> None:
    reader = PdfReader(io.BytesIO(pdf))
    total = len(reader.pages)
    assert total >= 3  # 12-week calendar and 25 flags flow onto further pages
    digest = plan_content_hash(plan)
    for number, page in enumerate(reader.pages, start=1):
        page_text = page.extract_text()
        assert f"Page {number} of {total}" in page_text
        assert "PLN-2026-000417" in page_text
        assert digest in page_text


def test_long_tables_repeat_their_header_rows() -> None:
    long_plan = synthetic_plan(weeks=26, weeks_shown=26, flags=25)
    reader = PdfReader(io.BytesIO(render_plan_pdf(long_plan)))
    calendar_pages = [p for p in reader.pages if "Checks and notes" in p.extract_text()]
    review_pages = [p for p in reader.pages if "Physician's decision" in p.extract_text()]
    assert len(calendar_pages) >= 2
    assert len(review_pages) >= 2


def test_page_is_portrait_us_letter(pdf: bytes) -> None:
    box = PdfReader(io.BytesIO(pdf)).pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (612, 792)


def test_identity_hash_matches_and_changes_with_one_dose(plan: PlanDocument, pdf: bytes) -> None:
    identity = read_plan_identity(pdf)
    assert identity.content_hash == plan_content_hash(plan)
    assert identity.plan_id == plan.plan_id
    assert identity.version == plan.version

    rows = list(plan.calendar)
    rows[5] = dataclasses.replace(rows[5], dose_mg=(rows[5].dose_mg or 0) + 12.5)
    changed = dataclasses.replace(plan, calendar=tuple(rows))
    assert plan_content_hash(changed) != identity.content_hash
    assert read_plan_identity(render_plan_pdf(changed)).content_hash == plan_content_hash(changed)


def test_hash_ignores_number_spelling_and_timezone_but_not_content(plan: PlanDocument) -> None:
    same_moment = plan.signed_at.astimezone(timezone(timedelta(hours=-5)))  # type: ignore[union-attr]
    respelled = dataclasses.replace(
        plan,
        signed_at=same_moment,
        protocol=dataclasses.replace(plan.protocol, refills=2, dose_mg=100),
    )
    assert plan_content_hash(respelled) == plan_content_hash(plan)
    assert plan_content_hash(dataclasses.replace(plan, version=4)) != plan_content_hash(plan)
    assert plan_content_hash(
        dataclasses.replace(plan, patient=dataclasses.replace(plan.patient, mrn="MRN-004218"))
    ) != plan_content_hash(plan)


def test_tampered_footer_does_not_match_the_signed_hash(plan: PlanDocument, pdf: bytes) -> None:
    """Someone who edits the metadata hash gets caught by the footer disagreeing with it."""
    reader = PdfReader(io.BytesIO(pdf))
    writer = PdfWriter(clone_from=reader)
    writer.add_metadata({"/KetaDeskPlanHash": "0" * 64})
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(UserFacingError, match="does not agree"):
        read_plan_identity(out.getvalue())


def test_printed_pages_are_checked_against_the_signed_data(
    plan: PlanDocument, pdf: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert printed_plan_matches(pdf, plan)

    # A forger with KetaDesk's own code prints a higher dose under the signed plan's hash.
    rows = list(plan.calendar)
    rows[0] = dataclasses.replace(rows[0], dose_mg=500.0)
    forged_doc = dataclasses.replace(plan, calendar=tuple(rows))
    signed_hash = plan_content_hash(plan)
    monkeypatch.setattr(plan_pdf, "plan_content_hash", lambda _doc: signed_hash)
    forged = render_plan_pdf(forged_doc)
    monkeypatch.undo()

    assert read_plan_identity(forged).content_hash == signed_hash  # the hash alone is fooled
    assert not printed_plan_matches(forged, plan)  # the printed pages are not


def test_encrypted_pdf_needs_its_password(plan: PlanDocument) -> None:
    secret = "correct horse battery staple"
    encrypted = render_plan_pdf(plan, password=secret)
    reader = PdfReader(io.BytesIO(encrypted))
    assert reader.is_encrypted
    assert "/AESV3" in str(reader.trailer["/Encrypt"].get_object().get("/CF", {}))
    with pytest.raises(UserFacingError, match="password-protected"):
        read_plan_identity(encrypted)
    with pytest.raises(UserFacingError, match="password"):
        read_plan_identity(encrypted, password="wrong horse")
    identity = read_plan_identity(encrypted, password=secret)
    assert identity.content_hash == plan_content_hash(plan)
    assert PATIENT_NAME in extract_plan_text(encrypted, password=secret)


def test_metadata_is_generic_and_carries_no_patient_data(plan: PlanDocument, pdf: bytes) -> None:
    info = PdfReader(io.BytesIO(pdf)).metadata
    assert info is not None
    assert info.title == "KetaDesk treatment plan"
    assert info.author == "Harbor Light Psychiatry"
    assert info.creator == "KetaDesk"
    values = " ".join(str(v) for v in info.values())
    for private in (PATIENT_NAME, "Zo", "MRN-004217", "1987", SITTER_NAME, "Mateo"):
        assert private not in values
    assert raw_contains_no_plaintext_name(pdf)


def raw_contains_no_plaintext_name(pdf: bytes) -> bool:
    info_objects = re.findall(rb"/Author.*?>>", pdf, flags=re.S)
    return all(b"MRN-004217" not in chunk for chunk in info_objects)


def test_draft_watermark_only_on_drafts(text: str) -> None:
    draft = synthetic_plan(is_draft=True)
    draft_pdf = render_plan_pdf(draft)
    reader = PdfReader(io.BytesIO(draft_pdf))
    for page in reader.pages:
        assert DRAFT_WATERMARK in page.extract_text()
    assert DRAFT_WATERMARK not in text
    assert "DRAFT" not in text


def test_unsigned_plan_that_is_not_a_draft_is_refused(plan: PlanDocument) -> None:
    unsigned = dataclasses.replace(plan, signed_by=None, signed_at=None)
    with pytest.raises(UserFacingError, match="Only signed protocol versions"):
        render_plan_pdf(unsigned)


def test_naive_signing_time_is_rejected(plan: PlanDocument) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        dataclasses.replace(plan, signed_at=datetime(2026, 11, 24, 15, 5))  # noqa: DTZ001


def test_dejavu_fonts_are_embedded(pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(pdf))
    embedded: set[str] = set()
    for page in reader.pages:
        fonts = page["/Resources"]["/Font"]
        for ref in fonts.values():
            font = ref.get_object()
            descendants = font.get("/DescendantFonts")
            candidates = [d.get_object() for d in descendants] if descendants else [font]
            for candidate in candidates:
                descriptor = candidate.get("/FontDescriptor")
                assert descriptor is not None, f"font {font.get('/BaseFont')} not embedded"
                descriptor = descriptor.get_object()
                assert isinstance(descriptor, DictionaryObject)
                assert "/FontFile2" in descriptor, f"font {font.get('/BaseFont')} not embedded"
                embedded.add(str(candidate.get("/BaseFont")))
    assert any("DejaVuSans" in name or "KetaDeskSans" in name for name in embedded), embedded
    assert any("Bold" in name for name in embedded), embedded


@pytest.mark.parametrize(
    "junk",
    [b"", b"not a pdf at all", b"%PDF-1.4\n%garbage\n"],
    ids=["empty", "text", "truncated"],
)
def test_damaged_files_are_reported_plainly(junk: bytes) -> None:
    with pytest.raises(UserFacingError, match=r"damaged|not a PDF"):
        read_plan_identity(junk)


def test_foreign_pdf_is_not_a_ketadesk_plan() -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(UserFacingError, match="not a KetaDesk treatment plan"):
        read_plan_identity(out.getvalue())


def test_damaged_plan_bytes_are_reported_plainly(pdf: bytes) -> None:
    with pytest.raises(UserFacingError):
        read_plan_identity(pdf[: len(pdf) // 3])


# --------------------------------------------------------------------------- batch rendering


def _jobs(tmp_path: Path, count: int) -> list[PlanJob]:
    jobs = []
    for i in range(count):
        doc = dataclasses.replace(synthetic_plan(weeks=4, flags=3), plan_id=f"PLN-TEST-{i:03d}")
        jobs.append(PlanJob(doc=doc, path=tmp_path / f"plan-{i:03d}.pdf"))
    return jobs


def test_batch_writes_each_plan_and_reports_failures_per_item(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path, 4)
    unsigned = dataclasses.replace(jobs[1].doc, signed_by=None, signed_at=None)
    jobs[1] = PlanJob(doc=unsigned, path=jobs[1].path)
    jobs[2] = PlanJob(doc=jobs[2].doc, path=tmp_path / "missing-folder" / "plan.pdf")
    jobs[3].path.write_bytes(b"someone else's file")
    seen: list[tuple[int, int]] = []

    results = render_plan_files(jobs, workers=2, progress=lambda d, t: seen.append((d, t)))

    assert [r.status for r in results] == [
        JobStatus.WRITTEN,
        JobStatus.FAILED,
        JobStatus.FAILED,
        JobStatus.SKIPPED,
    ]
    written = results[0]
    data = written.path.read_bytes()
    assert written.file_sha256 == hashlib.sha256(data).hexdigest()
    assert read_plan_identity(data).content_hash == written.content_hash
    assert written.content_hash == plan_content_hash(jobs[0].doc)
    assert "Only signed protocol versions" in (results[1].message or "")
    assert "could not be written" in (results[2].message or "")
    assert jobs[3].path.read_bytes() == b"someone else's file"
    assert seen[-1] == (4, 4) and len(seen) == 4
    assert not list(tmp_path.glob("*.part"))


def test_batch_cancel_stops_before_unstarted_plans(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path, 5)
    stop = threading.Event()

    def progress(done: int, total: int) -> None:
        if done == 1:
            stop.set()

    results = render_plan_files(jobs, workers=1, cancel=stop, progress=progress)
    assert results[0].status is JobStatus.WRITTEN
    assert all(r.status is JobStatus.CANCELLED for r in results[1:])
    assert not jobs[4].path.exists()

    already = threading.Event()
    already.set()
    parallel = render_plan_files(_jobs(tmp_path / "x", 3), workers=2, cancel=already)
    assert {r.status for r in parallel} == {JobStatus.CANCELLED}


def test_batch_with_password_encrypts_every_file(tmp_path: Path) -> None:
    jobs = [dataclasses.replace(job, password="s3cret pass") for job in _jobs(tmp_path, 2)]
    results = render_plan_files(jobs, workers=2)
    for result in results:
        data = result.path.read_bytes()
        assert PdfReader(io.BytesIO(data)).is_encrypted
        assert read_plan_identity(data, password="s3cret pass").plan_id == result.plan_id
    assert "s3cret" not in repr(jobs[0])


def test_oversized_entries_flow_onto_further_pages_instead_of_failing() -> None:
    """Cells taller than a page and unbroken words must still render, inside the page."""
    base = synthetic_plan(weeks=2, flags=2)
    long_word = "Hydroxy" * 30
    steps = tuple(f"Step {i}: {12.5 + i} mg per dose if tolerated" for i in range(90))
    flag = ReviewFlag("Major", f"Ketamine + {long_word}", "Hold and review. " * 250)
    rows = list(base.calendar)
    rows[0] = dataclasses.replace(rows[0], events=tuple(f"Check {i}" for i in range(80)))
    doc = dataclasses.replace(
        base,
        protocol=dataclasses.replace(base.protocol, titration_steps=steps),
        review=dataclasses.replace(base.review, flags=(flag, *base.review.flags)),
        calendar=tuple(rows),
    )
    pdf = render_plan_pdf(doc)
    text = extract_plan_text(pdf)
    assert "Step 89: 101.5 mg per dose if tolerated" in text
    assert "Check 79" in text
    furniture = re.compile(
        r"^(Plan PLN-.*|Page \d+ of \d+|Content hash .*|.*\(continued\)|Severity|Finding|"
        r"Physician's decision)$"
    )
    body = " ".join(
        line for line in text.replace("\f", "\n").splitlines() if not furniture.match(line)
    )
    assert _flat(body).count("Hold and review.") == 250

    reader = PdfReader(io.BytesIO(pdf))
    for page in reader.pages:
        starts = _text_starts(page)
        assert starts
        for x, y in starts:
            assert 0 <= x <= 612 and 0 <= y <= 792, (x, y)


def _text_starts(page: Any) -> list[tuple[float, float]]:
    """Where each text run on a page begins, in page coordinates (points)."""
    starts: list[tuple[float, float]] = []

    def visit(text: str, cm: list[float], tm: list[float], *_: object) -> None:
        if text.strip():
            starts.append((cm[4] + tm[4] * cm[0], cm[5] + tm[5] * cm[3]))

    page.extract_text(visitor_text=visit)
    return starts


def test_lines_read_by_the_physician_are_told_apart_from_those_nobody_checked(
    plan: PlanDocument,
) -> None:
    review = dataclasses.replace(plan.review, read_by_physician=("Ashwagandha root extract",))
    flat = _flat(extract_plan_text(render_plan_pdf(dataclasses.replace(plan, review=review))))
    read = flat.index("Read by your physician, not checked by the software.")
    unread = flat.index("Not checked. KetaDesk did not recognise these entries")
    assert "Dr Ana Ilić, MD read each of them before signing" in flat
    assert read < flat.index("Ashwagandha root extract") < unread
    assert unread < flat.index("“Calm Blend” herbal tea")

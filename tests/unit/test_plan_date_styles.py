"""Defect 7: one date style throughout the patient's plan, chosen by the practice; plans stored
before the choice existed keep their content hash (and so still verify)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from ketadesk.core.date_styles import (
    DAY_MONTH_ABBREVIATED,
    date_text,
    date_time_text,
    weekday_date_text,
)
from ketadesk.core.errors import UserFacingError
from ketadesk.core.settings import validate_setting
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
    plan_canonical_json,
    plan_content_hash,
)
from ketadesk.storage.plans.plan_document_json import (
    plan_document_from_json,
    plan_document_to_json,
)


@pytest.mark.parametrize(
    ("style", "day", "weekday", "moment"),
    [
        ("us", "09/03/2026", "Thu 09/03/2026", "09/03/2026, 14:05 UTC"),
        ("iso", "2026-09-03", "Thu 2026-09-03", "2026-09-03, 14:05 UTC"),
        ("long", "September 3, 2026", "Thu, September 3, 2026", "September 3, 2026, 14:05 UTC"),
        (DAY_MONTH_ABBREVIATED, "3 Sep 2026", "Thu 3 Sep 2026", "3 Sep 2026, 14:05 UTC"),
    ],
)
def test_each_style_writes_every_kind_of_date(style, day, weekday, moment) -> None:
    assert date_text(date(2026, 9, 3), style) == day
    assert weekday_date_text(date(2026, 9, 3), style) == weekday
    assert date_time_text(datetime(2026, 9, 3, 14, 5, tzinfo=UTC), style) == moment


def test_the_zone_a_moment_carries_is_named() -> None:
    eastern = timezone(timedelta(hours=-5), "EST")
    assert date_time_text(datetime(2026, 12, 2, 9, 30, tzinfo=eastern), "us") == (
        "12/02/2026, 09:30 EST"
    )


def test_the_setting_accepts_only_the_three_styles_and_says_them_in_words() -> None:
    assert validate_setting("plan_date_format", " iso ") == "iso"
    with pytest.raises(UserFacingError, match=r"MM/DD/YYYY \(12/02/2026\)"):
        validate_setting("plan_date_format", "dd.mm.yyyy")


def _document(**changes) -> PlanDocument:
    doc = PlanDocument(
        plan_id="KD-ABCDEF-00001", version=1, title="Home ketamine treatment plan",
        practice=PracticeInfo("Test Practice", "1 Main St", "(813) 555-0142"),
        patient=PatientBlock("Zoë Testperson", date(1984, 3, 9), "KD-00000001", "FL"),
        prescriber=PrescriberBlock("Dr. Rowan Quill", "1234567893", ("FL",)),
        protocol=ProtocolSummary(
            indication="Depression", kind="Standard", route="Sublingual", formulation="troche",
            strength="50 mg per troche", dose_mg=50, mg_per_kg=0.7, weight_kg=72,
            weight_date=date(2026, 11, 30), frequency="Weekly", titration_steps=(),
            max_dose_mg=50, duration="4 weeks from 2 Dec 2026", supply_per_30_days="4 troches",
            refills=0, sig="Dissolve one troche.",
        ),
        calendar=(CalendarRow(date(2026, 12, 2), 50, 0.7, ("Blood pressure before the dose",)),),
        calendar_weeks_shown=4,
        monitoring=MonitoringPlanText(("Check your blood pressure.",), ()),
        review=ReviewSummary(
            (ReviewFlag("Major", "Benzodiazepine", "Continue ketamine"),), (),
            date(2026, 12, 1), "Dr. Rowan Quill",
        ),
        signed_by="Dr. Rowan Quill", signed_at=datetime(2026, 12, 2, 15, 0, tzinfo=UTC),
        is_draft=False,
    )
    return replace(doc, **changes)


def test_a_plan_stored_before_the_new_fields_keeps_its_hash() -> None:
    """The fields added later (date style, contact relationship, note for the patient) are
    left out of the hash while they hold the value an older stored plan reads back with."""
    old = _document()
    stored = plan_document_to_json(old)
    for key in ('"date_style"', '"emergency_contact_relationship"', '"patient_note"'):
        stored = stored.replace(key, '"unused_' + key.strip('"') + '"')
    again = plan_document_from_json(stored)
    assert again.date_style == DAY_MONTH_ABBREVIATED
    assert plan_content_hash(again) == plan_content_hash(old)
    canonical = plan_canonical_json(old)
    for left_out in ("date_style", "emergency_contact_relationship", "patient_note"):
        assert left_out not in canonical


def test_the_new_fields_are_part_of_the_hash_once_set() -> None:
    old = _document()
    us = _document(date_style="us")
    noted = _document(review=replace(old.review, flags=(
        ReviewFlag("Major", "Benzodiazepine", "Continue ketamine", "Bring your pill bottles."),
    )))
    related = _document(patient=replace(old.patient, emergency_contact_relationship="spouse"))
    hashes = {plan_content_hash(d) for d in (old, us, noted, related)}
    assert len(hashes) == 4
    for doc in (us, noted, related):
        assert plan_content_hash(plan_document_from_json(plan_document_to_json(doc))) == (
            plan_content_hash(doc)
        )

"""Protocol storage on a real encrypted practice database: drafts, signing over a current
interaction review, immutable signed versions, discontinuation, limits, templates, audit."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.practice_limits import LimitValue, PracticeLimits, RouteLimits
from ketadesk.core.protocol_templates import builtin_templates, confirm_template, find_template
from ketadesk.core.protocols import Protocol, Route
from ketadesk.models.audit import AuditEvent
from ketadesk.models.patients import Patient, PatientMedication, VitalSign
from ketadesk.models.protocols import ProtocolVersion
from ketadesk.storage.outcomes.monitoring_plans import (
    monitoring_cadence_for,
)
from ketadesk.storage.outcomes.outcomes import (
    patient_outcomes,
)
from ketadesk.storage.practice.practice_limits_store import (
    get_practice_limits,
    set_practice_limits,
)
from ketadesk.storage.practice.practice_templates import (
    all_templates,
    delete_template,
    export_templates_file,
    import_templates_file,
    practice_templates,
    save_template,
)
from ketadesk.storage.protocols import protocols as store
from ketadesk.storage.protocols.protocol_versions import (
    active_signed_protocol,
    active_signed_protocols,
    chart_weight,
    current_protocol,
    get_version,
    patient_protocols,
)
from ketadesk.storage.security.audit_log import verify_audit


@pytest.fixture
def practice(practice_on):
    """Each test on a practice file and on a practice server (``tests/conftest.py``)."""
    return practice_on


TODAY = datetime.now(UTC).date()
SOURCE = "Test practice policy 2026-01 (synthetic)"


def add_patient(session: Any, mrn: str, weight_kg: float | None = 70.0,
                weighed: date | None = None) -> int:
    patient = Patient(mrn=mrn, first_name="Zoë", last_name="Ñúñez-Łukasiewicz",
                      dob=date(1980, 5, 1), state="NJ", status="active")
    session.add(patient)
    session.flush()
    if weight_kg is not None:
        on = weighed or TODAY - timedelta(days=3)
        session.add(VitalSign(patient_id=patient.id, weight_kg=weight_kg, systolic=120,
                              diastolic=80, entered_by="drquill",
                              measured_at=datetime(on.year, on.month, on.day, 14, tzinfo=UTC)))
    return patient.id


def full_limits(mg_per_kg: float = 2.0, mg: float = 300.0) -> PracticeLimits:
    route = RouteLimits(
        max_single_dose_mg_per_kg=LimitValue(mg_per_kg, SOURCE),
        max_single_dose_mg=LimitValue(mg, SOURCE),
        max_daily_mg=LimitValue(mg, SOURCE),
        min_interval_hours=LimitValue(24, SOURCE),
        max_sessions_per_week=LimitValue(7, SOURCE),
    )
    return PracticeLimits(routes={r: route for r in Route},
                          weight_max_age_days=LimitValue(90, SOURCE))


def confirmed(name: str = "Microdose, sublingual") -> Protocol:
    template = confirm_template(find_template(name, builtin_templates()))
    return replace(template.protocol, review_date=TODAY + timedelta(days=60))


def events(session: Any, action: str) -> list[AuditEvent]:
    return list(session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars())


def test_limits_start_empty_and_only_managing_physicians_change_them(practice: Any) -> None:
    with practice.db.session() as s:
        limits = get_practice_limits(s)
        assert limits.for_route(Route.SUBLINGUAL).max_single_dose_mg.value is None
        with pytest.raises(UserFacingError, match="Only"):
            set_practice_limits(s, practice.admin, full_limits())
        set_practice_limits(s, practice.physician, full_limits())
    with practice.db.session() as s:
        stored = get_practice_limits(s)
        assert stored.for_route(Route.INTRANASAL).max_single_dose_mg_per_kg == LimitValue(
            2.0, SOURCE)
        [event] = events(s, audit_actions.PRACTICE_LIMITS_CHANGED)
        assert event.detail.startswith("21 changed: intranasal.max_single_dose_mg_per_kg unset->2;")
        assert "intranasal.max_single_dose_mg unset->300" in event.detail
        assert SOURCE not in event.detail  # sources are free text: not in the audit trail


def test_a_set_limit_needs_a_source_and_a_positive_value(practice: Any) -> None:
    no_source = full_limits().with_route(
        Route.SUBLINGUAL, RouteLimits(max_single_dose_mg=LimitValue(200, "  ")))
    with practice.db.session() as s, pytest.raises(UserFacingError, match="source"):
        set_practice_limits(s, practice.physician, no_source)
    negative = full_limits().with_route(
        Route.SUBLINGUAL, RouteLimits(max_single_dose_mg=LimitValue(-1, SOURCE)))
    with practice.db.session() as s, pytest.raises(UserFacingError, match="more than 0"):
        set_practice_limits(s, practice.physician, negative)


def test_draft_from_template_keeps_example_values_and_the_chart_weight(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "KD-T1", 72.5, TODAY - timedelta(days=10))
        template = find_template("Intranasal", builtin_templates())
        version = store.create_draft_from_template(s, practice.physician, pid, template, TODAY)
    assert version.number == 1 and not version.is_signed
    assert version.protocol.example_values
    assert version.template_name == "Intranasal"
    assert version.weight is not None and version.weight.kg == 72.5
    assert version.weight.measured_on == TODAY - timedelta(days=10)
    with practice.db.session() as s:
        assert active_signed_protocol(s, pid) is None
        assert current_protocol(s, pid) is not None


def test_saving_again_updates_the_open_draft_instead_of_adding_versions(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "KD-T2")
        first = store.save_draft(s, practice.physician, pid, confirmed(), TODAY)
        changed = replace(first.protocol, notes="take seated")
        second = store.save_draft(s, practice.physician, pid, changed, TODAY + timedelta(days=1))
    assert second.version_id == first.version_id and second.number == 1
    assert second.start_date == TODAY + timedelta(days=1)
    assert second.content_hash != first.content_hash
    with practice.db.session() as s:
        [course] = patient_protocols(s, pid)
        assert len(course.versions) == 1 and course.draft is not None
        assert len(events(s, audit_actions.PROTOCOL_DRAFT_CREATED)) == 1
        assert len(events(s, audit_actions.PROTOCOL_DRAFT_SAVED)) == 1
        assert all("seated" not in e.detail for e in events(s, audit_actions.PROTOCOL_DRAFT_SAVED))


def test_admins_cannot_edit_sign_or_discontinue(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "KD-T3")
        version = store.save_draft(s, practice.physician, pid, confirmed(), TODAY)
        with pytest.raises(UserFacingError, match="Only physicians"):
            store.save_draft(s, practice.admin, pid, confirmed(), TODAY)
        with pytest.raises(UserFacingError, match="Only physicians"):
            store.sign_version(s, practice.admin, version.version_id)
        with pytest.raises(UserFacingError, match="Only physicians"):
            store.discontinue_protocol(s, practice.admin, version.protocol_id, "moved away")


def test_discontinue_needs_a_reason_and_keeps_it_out_of_the_audit(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "KD-T4")
        version = store.save_draft(s, practice.physician, pid, confirmed(), TODAY)
        with pytest.raises(UserFacingError, match="reason"):
            store.discontinue_protocol(s, practice.physician, version.protocol_id, "   ")
        course = store.discontinue_protocol(s, practice.physician, version.protocol_id,
                                            "Patient moved out of state")
        assert course.status == "discontinued"
        assert course.discontinued_reason == "Patient moved out of state"
        assert current_protocol(s, pid) is None
        with pytest.raises(UserFacingError, match="already discontinued"):
            store.discontinue_protocol(s, practice.physician, version.protocol_id, "again")
        [event] = events(s, audit_actions.PROTOCOL_DISCONTINUED)
        assert "moved" not in event.detail
        # A new draft starts a new course of treatment.
        fresh = store.save_draft(s, practice.physician, pid, confirmed(), TODAY)
        assert fresh.protocol_id != version.protocol_id and fresh.number == 1


def test_version_diff_names_dose_start_date_and_weight_changes(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "KD-T5")
        a = store.save_draft(s, practice.physician, pid, confirmed(), TODAY)
    ladder = replace(a.protocol.ladder, start_dose_mg=a.protocol.ladder.start_dose_mg + 5)
    b = replace(a, protocol=replace(a.protocol, ladder=ladder),
                start_date=a.start_date + timedelta(days=7), weight=None)
    diff = store.version_diff(a, b)
    assert diff[0].startswith("Start date: ")
    assert any(line.startswith("Weight used: 70 kg") and line.endswith("→ none") for line in diff)
    assert any(line.startswith("Start dose: ") for line in diff)
    assert store.version_diff(a, a) == []


def test_practice_templates_save_export_import_and_refuse_builtin_names(
    practice: Any, tmp_path: Path
) -> None:
    builtin = find_template("Microdose, sublingual", builtin_templates())
    with practice.db.session() as s:
        with pytest.raises(UserFacingError, match="built-in"):
            save_template(s, practice.physician, confirm_template(builtin))
        save_template(s, practice.physician,
                            confirm_template(builtin, "Microdose SL (our practice)"))
        with pytest.raises(UserFacingError, match="Only physicians"):
            save_template(s, practice.admin, confirm_template(builtin, "x"))
        names = [t.name for t in all_templates(s)]
        assert names[:3] == [t.name for t in builtin_templates()]
        assert names[3:] == ["Microdose SL (our practice)"]
        path = tmp_path / "ours.json"
        assert export_templates_file(s, path) == 1
        delete_template(s, practice.physician, "microdose sl (our practice)")
        assert practice_templates(s) == ()
    exported = json.loads(path.read_text("utf-8"))
    assert exported["templates"][0]["protocol"]["example_values"] is False
    with practice.db.session() as s:
        [imported] = import_templates_file(s, practice.physician, path)
        assert imported.name == "Microdose SL (our practice)" and not imported.built_in
        assert not imported.example_values
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "ketadesk-protocol-templates", "templates": [{}]', "utf-8")
    with practice.db.session() as s, pytest.raises(UserFacingError, match="not valid JSON"):
        import_templates_file(s, practice.physician, bad)


def test_monitoring_cadence_falls_back_to_practice_defaults(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "KD-T6")
        plan = monitoring_cadence_for(s, pid)
    assert plan.protocol_version_id is None and plan.source == "practice default"
    assert plan.cadence.checkin_every_days == 14
    assert plan.cadence.questionnaire_every_weeks == 4
    protocol = confirmed()
    mon = replace(protocol.monitoring, phq9_every_weeks=2, gad7_every_weeks=6,
                  check_in_every_days=None, hold_systolic_above_mmhg=150)
    cadence = store.cadence_from_protocol(replace(protocol, monitoring=mon), 14, 4)
    assert cadence.checkin_every_days == 14
    assert cadence.questionnaire_every_weeks == 2
    assert cadence.instruments == ("PHQ-9", "GAD-7")
    rules = store.dose_rules_from_protocol(replace(protocol, monitoring=mon))
    assert rules.hold_systolic_above == 150
    assert rules.max_single_dose_mg == protocol.ladder.max_dose_mg


def test_chart_weight_is_the_latest_reading(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "KD-T7", 80.0, TODAY - timedelta(days=100))
        s.add(VitalSign(patient_id=pid, weight_kg=78.2, entered_by="drquill",
                        measured_at=datetime.now(UTC) - timedelta(days=1)))
        s.add(VitalSign(patient_id=pid, weight_kg=None, systolic=130, entered_by="drquill",
                        measured_at=datetime.now(UTC)))
        s.flush()
        weight = chart_weight(s, pid)
        assert weight is not None and weight.kg == 78.2
        assert chart_weight(s, add_patient(s, "KD-T8", None)) is None


# --------------------------------------------------------------------------- signing


def sign_review_now(session: Any, actor: Any, pid: int) -> int:
    from ketadesk.storage.reviews.interaction_reviews import sign_review

    return sign_review(session, actor, pid).review_id


def acknowledge_all(session: Any, actor: Any, pid: int, protocol: Protocol) -> list[str]:
    check = store.signing_check(session, actor, pid, protocol, TODAY)
    assert not check.errors, [m.message for m in check.errors]
    return [m.code for m in check.warnings]


def test_signing_needs_a_current_signed_interaction_review(practice: Any) -> None:
    with practice.db.session() as s:
        set_practice_limits(s, practice.physician, full_limits())
        pid = add_patient(s, "KD-S1")
        draft = store.save_draft(s, practice.physician, pid, confirmed(), TODAY)
        with pytest.raises(UserFacingError, match="no signed interaction review yet"):
            store.sign_version(s, practice.physician, draft.version_id)
        gate = store.review_gate(s, pid)
        assert gate.state == "none" and not gate.allows_signing


def test_sign_then_edit_makes_a_new_draft_and_the_signed_version_never_changes(
    practice: Any,
) -> None:
    with practice.db.session() as s:
        set_practice_limits(s, practice.physician, full_limits())
        pid = add_patient(s, "KD-S2")
        draft = store.save_draft(s, practice.physician, pid, confirmed(), TODAY)
        review_id = sign_review_now(s, practice.physician, pid)
        codes = acknowledge_all(s, practice.physician, pid, draft.protocol)
        if codes:
            with pytest.raises(UserFacingError, match="Acknowledge each warning"):
                store.sign_version(s, practice.physician, draft.version_id, today=TODAY)
        signed = store.sign_version(s, practice.physician, draft.version_id,
                                    acknowledged_warnings=codes, today=TODAY)
    assert signed.is_signed and signed.signed_by == practice.physician.user_name
    assert signed.signed_by_full_name == "Dr. Rowan Quill"
    assert signed.interaction_review_id == review_id
    assert signed.acknowledged_warnings == tuple(sorted(codes))
    assert "signed" in signed.label and "Dr. Rowan Quill" in signed.label
    with practice.db.session() as s:
        with pytest.raises(UserFacingError, match="already signed"):
            store.sign_version(s, practice.physician, signed.version_id, today=TODAY)
        assert active_signed_protocol(s, pid) == signed
        edit = store.create_draft_from_previous(s, practice.physician, pid)
        assert edit.number == 2 and not edit.is_signed
        assert edit.content_hash == signed.content_hash
        changed = replace(edit.protocol, notes="changed after signing")
        store.save_draft(s, practice.physician, pid, changed, TODAY)
    with practice.db.session() as s:
        again = get_version(s, signed.version_id)
        assert again == signed  # the signed version is untouched
        assert active_signed_protocol(s, pid) == signed  # the draft is not in force
        course = current_protocol(s, pid)
        assert course is not None and [v.number for v in course.versions] == [1, 2]
        assert store.version_diff(course.versions[0], course.versions[1]) == [
            "Notes: none → changed after signing"]
        plan = monitoring_cadence_for(s, pid)
        assert plan.protocol_version_id == signed.version_id
        # The outcome charts mark each signed version from the day it is in force.
        assert patient_outcomes(s, pid, TODAY).signed_versions == ((TODAY, 1),)
        assert plan.starts_on == TODAY and plan.dose_rules is not None
        assert plan.dose_rules.max_single_dose_mg == signed.protocol.ladder.max_dose_mg
        assert active_signed_protocols(s, [pid]) == {pid: signed}
        [event] = events(s, audit_actions.PROTOCOL_SIGNED)
        assert f"review {review_id}" in event.detail and event.patient_id == pid
        assert verify_audit(s).is_intact


def test_a_stale_review_blocks_signing_with_the_reason_in_words(practice: Any) -> None:
    with practice.db.session() as s:
        set_practice_limits(s, practice.physician, full_limits())
        pid = add_patient(s, "KD-S3")
        sign_review_now(s, practice.physician, pid)
        s.add(PatientMedication(patient_id=pid, entered_text="sertraline 50 mg daily",
                                source="patient_reported", entered_by="drquill"))
        s.flush()
        draft = store.save_draft(s, practice.physician, pid, confirmed(), TODAY)
        with pytest.raises(UserFacingError) as caught:
            store.sign_version(s, practice.physician, draft.version_id, today=TODAY)
    message = caught.value.message
    assert message.startswith("A protocol can be signed only over a current, signed interaction "
                              "review; the review for this patient is stale (")
    assert "medication" in message


def test_an_over_limit_dose_blocks_signing_in_words(practice: Any) -> None:
    with practice.db.session() as s:
        set_practice_limits(s, practice.physician, full_limits(mg_per_kg=0.5))
        pid = add_patient(s, "KD-S4", weight_kg=50.0)
        protocol = confirmed("Standard dose, sublingual RDT")
        draft = store.save_draft(s, practice.physician, pid, protocol, TODAY)
        sign_review_now(s, practice.physician, pid)
        check = store.signing_check(s, practice.physician, pid, protocol, TODAY)
        top = max(protocol.ladder.max_dose_mg, protocol.ladder.start_dose_mg)
        wanted = f"exceeds the practice maximum of 0.5 mg/kg for sublingual ({top:g} mg at 50 kg"
        assert any(wanted in m.message for m in check.errors), check.errors
        codes = [m.code for m in check.warnings]
        assert check.blockers(codes) == ["1 problem must be fixed first."]
        with pytest.raises(UserFacingError, match="exceeds the practice maximum"):
            store.sign_version(s, practice.physician, draft.version_id,
                               acknowledged_warnings=codes,
                               today=TODAY)
        row = s.get(ProtocolVersion, draft.version_id)
        assert row is not None and row.status == "draft"


def test_protocol_check_reads_the_practice_limits_from_the_database(practice: Any) -> None:
    from tests.conftest import PASSWORD, PHYSICIAN
    from tests.e2e.cli_runner import run_ketadesk

    with practice.db.session() as s:
        set_practice_limits(s, practice.physician, full_limits(mg=20.0))
    args = (*practice.db_option, "protocol", "check", "--template",
            "Microdose, sublingual", "--weight-kg", "70")
    result = run_ketadesk(*args, "--as", practice.name_of(PHYSICIAN), "--password-stdin",
                          stdin=PASSWORD + "\n")
    assert result.returncode == 1, result.stderr
    assert "Dose 25 mg exceeds the practice maximum of 20 mg for sublingual." in result.stdout
    assert "has not set" not in result.stdout
    refused = run_ketadesk(*args)
    assert refused.returncode != 0
    assert "also give --as NAME" in refused.stderr


def test_demo_step_fills_limits_templates_and_signs_over_current_reviews(practice: Any) -> None:
    from ketadesk.storage.demo import demo_data, demo_protocols, demo_reviews

    with practice.db.session() as s:
        demo_data.populate_demo_patients(s, 40, entered_by=practice.physician.user_name)
    demo_reviews.populate(practice.db, practice.physician)
    demo_protocols.populate(practice.db, practice.physician)
    with practice.db.session() as s:
        limits = get_practice_limits(s)
        sublingual = limits.for_route(Route.SUBLINGUAL)
        assert sublingual.max_single_dose_mg.source == demo_protocols.DEMO_SOURCE
        assert all(getattr(limits.for_route(r), n).is_set for r in Route
                   for n in ("max_single_dose_mg", "min_interval_hours"))
        assert {t.name for t in practice_templates(s)} == {
            t.name for t in demo_protocols.demo_templates()}
        signed = active_signed_protocols(s)
        assert signed
        for version in signed.values():
            assert not version.protocol.example_values
            assert version.interaction_review_id is not None
            assert version.template_name.endswith("(demo practice)")

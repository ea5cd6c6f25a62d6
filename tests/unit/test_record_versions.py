"""Saves over a newer version of a protocol draft, the practice settings or a medication or
condition line are refused with who and when, never silent; settling a line after a
field-by-field choice keeps every permission rule (real encrypted practice, no Qt)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from ketadesk.core.demographics import PatientDemographics
from ketadesk.core.edit_conflicts import theirs_as_shown
from ketadesk.core.errors import UserFacingError
from ketadesk.storage.patients import patients as service
from ketadesk.storage.patients.entry_versions import EntryChangedError, medication_values
from ketadesk.storage.patients.patient_medications import (
    add_medication,
    settle_medication,
    stop_medication,
    verify_medication,
)
from ketadesk.storage.practice.practice_templates import all_templates
from ketadesk.storage.practice.settings_store import (
    SettingsChangedError,
    get_setting,
    set_settings,
)
from ketadesk.storage.protocols.draft_versions import (
    NO_VERSION_SHOWN,
    DraftChangedError,
    version_mark,
)
from ketadesk.storage.protocols.protocol_versions import current_protocol
from ketadesk.storage.protocols.protocols import (
    create_draft_from_template,
    discontinue_protocol,
    save_draft,
)


@pytest.fixture
def practice(practice_on: Any) -> Any:
    """Each test on a practice file and on a practice server (``tests/conftest.py``)."""
    return practice_on


TODAY = date(2026, 3, 15)
PATIENT = PatientDemographics(
    first_name="Ines", last_name="Marlow", dob=date(1979, 4, 2), sex="female", state="NJ",
    county="Bergen", phone="(201) 555-0110",
)


@pytest.fixture
def patient_id(practice) -> int:
    with practice.db.session() as s:
        return service.create_patient(s, practice.physician, PATIENT, today=TODAY).id


def test_theirs_as_shown_keeps_the_forms_spelling_of_untouched_fields() -> None:
    base_stored = {"phone": "3525550101", "city": "Ocala"}
    base_shown = {"phone": "(352) 555-0101", "city": "Ocala"}
    stored = {"phone": "3525550101", "city": "Gainesville"}
    assert theirs_as_shown(base_stored, base_shown, stored) == {
        "phone": "(352) 555-0101", "city": "Gainesville"}


def test_a_draft_saved_elsewhere_is_refused_with_the_stored_draft_and_its_saver(
    practice, patient_id
) -> None:
    with practice.db.session() as s:
        template = all_templates(s)[0]
        shown = create_draft_from_template(s, practice.physician, patient_id, template, TODAY)
    with practice.db.session() as s:
        theirs = save_draft(s, practice.physician, patient_id,
                            replace(shown.protocol, notes="Theirs"), TODAY,
                            expected=version_mark(shown))
    with pytest.raises(DraftChangedError) as refused, practice.db.session() as s:
        save_draft(s, practice.physician, patient_id, replace(shown.protocol, notes="Mine"),
                   TODAY, expected=version_mark(shown))
    error = refused.value
    assert error.current.protocol.notes == "Theirs" and error.changed_by == "Dr. Rowan Quill"
    assert error.changed_at == theirs.updated_at
    assert "saved this protocol while you were editing it" in error.message
    with practice.db.read_session() as s:
        assert current_protocol(s, patient_id).draft.protocol.notes == "Theirs"
    # Discontinued elsewhere: said in words, nothing written.
    with practice.db.session() as s:
        discontinue_protocol(s, practice.physician, theirs.protocol_id, "Moved away")
    with pytest.raises(UserFacingError, match="discontinued on another computer"), \
            practice.db.session() as s:
        save_draft(s, practice.physician, patient_id, shown.protocol, TODAY,
                   expected=version_mark(theirs))


def test_a_protocol_started_elsewhere_is_not_replaced_by_a_new_one(practice, patient_id) -> None:
    with practice.db.session() as s:
        template = all_templates(s)[0]
        create_draft_from_template(s, practice.physician, patient_id, template, TODAY)
    with pytest.raises(DraftChangedError), practice.db.session() as s:
        save_draft(s, practice.physician, patient_id, template.protocol, TODAY,
                   expected=NO_VERSION_SHOWN)


def test_settings_changed_elsewhere_refuse_the_whole_save(practice) -> None:
    with practice.db.session() as s:
        shown = {key: get_setting(s, key) for key in ("practice_phone", "auto_lock_minutes")}
    with practice.db.session() as s:
        set_settings(s, practice.physician, {"practice_phone": "(201) 555-0199"}, shown)
    with pytest.raises(SettingsChangedError) as refused, practice.db.session() as s:
        set_settings(s, practice.physician,
                     {"auto_lock_minutes": 5, "practice_phone": "(201) 555-0123"}, shown)
    assert refused.value.current == {"practice_phone": "(201) 555-0199", "auto_lock_minutes": 10}
    assert refused.value.changed_by == "Dr. Rowan Quill"
    with practice.db.read_session() as s:
        assert get_setting(s, "auto_lock_minutes") == 10  # nothing of the refused save
    with practice.db.session() as s:  # a setting nobody else changed goes through
        set_settings(s, practice.physician, {"auto_lock_minutes": 5}, shown)
        assert get_setting(s, "auto_lock_minutes") == 5


def test_settling_a_medication_keeps_every_permission_rule(practice, patient_id) -> None:
    physician, admin = practice.physician, practice.admin
    with practice.db.session() as s:
        line = add_medication(s, physician, patient_id, "sertraline 50 mg daily")
    with practice.db.session() as s:
        verified = verify_medication(s, physician, line.id, expected_version=line.version)
    with pytest.raises(EntryChangedError) as refused, practice.db.session() as s:
        stop_medication(s, admin, line.id, reason="patient_stopped",
                        expected_version=line.version)
    assert refused.value.current == verified and refused.value.changed_by == "Dr. Rowan Quill"
    mine = {**medication_values(verified), "status": "stopped", "stop_reason": "replaced"}
    with pytest.raises(UserFacingError, match="physician"), practice.db.session() as s:
        settle_medication(s, admin, line.id, mine, expected_version=verified.version)
    unverified = {**medication_values(verified), "source": "patient_reported"}
    with pytest.raises(UserFacingError, match="stays verified"), practice.db.session() as s:
        settle_medication(s, physician, line.id, unverified, expected_version=verified.version)
    with practice.db.session() as s:
        stopped = settle_medication(s, physician, line.id, mine,
                                    expected_version=verified.version)
    assert (stopped.is_active, stopped.stop_reason) == (False, "replaced")
    again = {**medication_values(stopped), "status": "active"}
    with pytest.raises(UserFacingError, match="add it as a new line"), \
            practice.db.session() as s:
        settle_medication(s, physician, line.id, again, expected_version=stopped.version)


def test_resolving_a_condition_changed_elsewhere_names_who(practice, patient_id) -> None:
    with practice.db.session() as s:
        entry = service.add_condition(s, practice.physician, patient_id, "Chronic PTSD")
        service.resolve_condition(s, practice.physician, entry.id,
                                  expected_version=entry.version)
    with pytest.raises(EntryChangedError) as refused, practice.db.session() as s:
        service.resolve_condition(s, practice.physician, entry.id,
                                  expected_version=entry.version)
    assert refused.value.changed_by == "Dr. Rowan Quill"
    assert not refused.value.current.is_active

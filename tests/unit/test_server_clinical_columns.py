"""Physicians' columns on the tables the front desk writes too, on the practice server.

An admin holds INSERT and UPDATE on patients, medications, questionnaires, dose alerts and PDMP
look-ups (the grants), so these tests show that with ``psql`` and their own password they still
cannot verify a medication, change a verified one, set a treatment status or pregnancy, remove
a chart, acknowledge or remove a dose alert, hide an item-9 answer or record a look-up as a
physician: a trigger refuses it (SQLSTATE 42501, raised inside the trigger's own function).
What the app lets each role do still works through the services on the server.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import psycopg
import pytest

from ketadesk.core.demographics import PatientDemographics
from ketadesk.core.permissions import Role
from ketadesk.models.outcomes import DoseBreachAlert, DoseLogRecord
from ketadesk.storage.compliance.pdmp_checks import record_pdmp_check
from ketadesk.storage.outcomes.dose_alerts import acknowledge_dose_alert
from ketadesk.storage.outcomes.outcomes import record_questionnaire
from ketadesk.storage.patients.patient_medications import (
    add_medication,
    stop_medication,
    verify_medication,
)
from ketadesk.storage.patients.patients import change_status, create_patient
from ketadesk.storage.server.clinical_columns import CLINICAL_COLUMN_TABLES
from ketadesk.storage.server.server_practice import ServerPractice
from tests.server_practice import drop_database, new_database, psql_connection
from tests.unit.test_outcomes_storage import PHQ_ITEM9

PHYSICIAN, ADMIN = "drquill", "frontdesk"
PHYSICIAN_PASSWORD = "correct horse battery"
ADMIN_PASSWORD = "staple gun lighthouse"
TODAY = datetime.now(UTC).date()


def _patient(admin: ServerPractice, last_name: str) -> int:
    draft = PatientDemographics(
        first_name="Mina", last_name=last_name, dob=date(1979, 6, 1), sex="female",
        state="NJ", county="Bergen",
    )
    with admin.session() as session:
        return create_patient(session, admin.actor, draft, today=TODAY).id


@pytest.fixture(scope="module")
def clinic(practice_server):
    """A chart with reported and verified medications, a PHQ-9 with an item-9 answer, a PDMP
    look-up by the front desk and an open dose alert."""
    address = new_database(practice_server)
    ca = practice_server.ca_certificate
    try:
        ServerPractice.create(
            address, ca, owner_password=practice_server.owner_password(), user_name=PHYSICIAN,
            full_name="Dr Ada Quill", password=PHYSICIAN_PASSWORD,
        )
        physician = ServerPractice.log_in(address, ca, PHYSICIAN, PHYSICIAN_PASSWORD)
        physician.add_user(ADMIN, "Frank Desk", Role.ADMIN, ADMIN_PASSWORD)
        admin = ServerPractice.log_in(address, ca, ADMIN, ADMIN_PASSWORD)
        patient_id = _patient(admin, "Okafor")
        with admin.session() as session:
            add_medication(session, admin.actor, patient_id, "sertraline 50 mg daily")
            record_questionnaire(session, admin.actor, patient_id, "PHQ-9", PHQ_ITEM9, TODAY,
                                 today=TODAY)
            record_pdmp_check(session, admin.actor, patient_id, state="NJ",
                              result="Nothing unexpected")
        with physician.session() as session:
            add_medication(session, physician.actor, patient_id, "lorazepam 1 mg at night",
                           source="verified")
            dose = DoseLogRecord(patient_id=patient_id, taken_at=datetime.now(UTC),
                                 dose_mg=400.0, entered_by=ADMIN)
            session.add(dose)
            session.flush()
            session.add(DoseBreachAlert(patient_id=patient_id, dose_log_id=dose.id,
                                        kinds="over_maximum"))
        admin.close()
        physician.close()
        yield SimpleNamespace(cluster=practice_server, address=address, patient_id=patient_id)
    finally:
        drop_database(practice_server, address)


def _log_in(clinic, user: str, password: str) -> ServerPractice:
    return ServerPractice.log_in(clinic.address, clinic.cluster.ca_certificate, user, password)


def _copy_of(table: str, changes: str) -> str:
    """An INSERT of a copy of the table's first row with ``changes`` (a JSON object)."""
    return (
        f"INSERT INTO {table} SELECT (jsonb_populate_record(NULL::{table}, to_jsonb(t) || "
        f"jsonb_build_object('id', 90000 + t.id, 'uid', md5(random()::text)) || "
        f"'{changes}'::jsonb)).* FROM {table} t ORDER BY t.id LIMIT 1"
    )


VERIFY = "Only physicians may mark medications verified"
VERIFIED = "Only physicians may change or stop a verified medication"
STATUS = "Only physicians may change a patient's treatment status or pregnancy"
DOSE_ALERT = "Only physicians may acknowledge or remove a home-dose safety alert"
FORM = "Only physicians may change or remove a recorded questionnaire"

ADMIN_FORBIDDEN = [
    ("patient_medications", "UPDATE patient_medications SET source = 'verified', "
     "verified_by = 'frontdesk', verified_at = now() WHERE source = 'patient_reported'", VERIFY),
    ("patient_medications", "UPDATE patient_medications SET verified_by = 'frontdesk' "
     "WHERE source = 'patient_reported'", VERIFY),
    ("patient_medications", _copy_of("patient_medications", '{"source": "verified", '
     '"verified_by": "frontdesk", "verified_at": "2026-01-02T00:00:00"}'), VERIFY),
    ("patient_medications", "UPDATE patient_medications SET dose_text = '2 mg' "
     "WHERE source = 'verified'", VERIFIED),
    ("patient_medications", "UPDATE patient_medications SET is_active = false, "
     "stopped_by = 'frontdesk', stopped_at = now(), stop_reason = 'patient_stopped' "
     "WHERE source = 'verified'", VERIFIED),
    ("patient_medications", "DELETE FROM patient_medications WHERE source = 'verified'",
     VERIFIED),
    ("patients", "UPDATE patients SET status = 'active'", STATUS),
    ("patients", "UPDATE patients SET pregnant = true", STATUS),
    ("patients", _copy_of("patients", '{"mrn": "KD-COPY-1", "status": "active"}'),
     "A new patient starts in screening"),
    ("patients", "DELETE FROM patients", "Only physicians may remove a patient's chart"),
    ("dose_breach_alerts", "UPDATE dose_breach_alerts SET acknowledged_by = 'frontdesk', "
     "acknowledged_at = now(), note = 'seen'", DOSE_ALERT),
    ("dose_breach_alerts", "DELETE FROM dose_breach_alerts", DOSE_ALERT),
    ("dose_breach_alerts", _copy_of("dose_breach_alerts", '{"acknowledged_by": "frontdesk", '
     '"acknowledged_at": "2026-01-02T00:00:00"}'), "Only physicians may acknowledge"),
    ("questionnaire_responses", "UPDATE questionnaire_responses SET safety_alert = false", FORM),
    ("questionnaire_responses", "DELETE FROM questionnaire_responses", FORM),
    ("questionnaire_responses", _copy_of("questionnaire_responses", '{"safety_alert": false}'),
     "A questionnaire whose safety item was answered is stored with its alert open"),
    ("pdmp_checks", _copy_of("pdmp_checks", '{"checked_by_role": "physician"}'),
     "recorded as made by a designee"),
    ("pdmp_checks", "UPDATE pdmp_checks SET checked_by_role = 'physician'",
     "recorded as made by a designee"),
]


def _contents(connection: psycopg.Connection) -> dict[str, str]:
    return {
        table: connection.execute(
            f"SELECT md5(coalesce(string_agg(to_jsonb(t)::text, ',' ORDER BY t.id), '')) "
            f"FROM {table} t"
        ).fetchone()[0]
        for table in CLINICAL_COLUMN_TABLES
    }


@pytest.mark.parametrize(("table", "statement", "answer"), ADMIN_FORBIDDEN)
def test_an_admin_with_psql_cannot_write_a_physicians_column(clinic, table, statement, answer):
    with psql_connection(clinic.cluster, clinic.address, ADMIN, ADMIN_PASSWORD) as admin:
        # The grant allows the write: it is the trigger, not a privilege, that refuses.
        assert admin.execute(
            "SELECT has_table_privilege(session_user, %s, 'INSERT, UPDATE, DELETE')", (table,)
        ).fetchone() == (True,)
        assert admin.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0
        before = _contents(admin)
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
            admin.execute(statement)
        assert answer in (refused.value.diag.message_primary or "")
        assert "PL/pgSQL function ketadesk_admin_" in (refused.value.diag.context or "")
        assert _contents(admin) == before


def test_the_physician_with_psql_is_not_limited_by_these_triggers(clinic):
    physician_session = psql_connection(
        clinic.cluster, clinic.address, PHYSICIAN, PHYSICIAN_PASSWORD
    )
    with physician_session as physician:
        before = _contents(physician)
        with physician.transaction():
            for statement in (
                "UPDATE patients SET pregnant = true",
                "UPDATE patient_medications SET source = 'verified', verified_by = 'drquill', "
                "verified_at = now() WHERE source = 'patient_reported'",
                "UPDATE dose_breach_alerts SET acknowledged_by = 'drquill', "
                "acknowledged_at = now(), note = 'called'",
            ):
                assert physician.execute(statement).rowcount > 0
            assert _contents(physician) != before
            # Rolled back: the fixture's rows stay as they were for the other tests.
            raise psycopg.Rollback()
        assert _contents(physician) == before


def test_what_each_role_may_do_still_works_through_the_services(clinic):
    admin = _log_in(clinic, ADMIN, ADMIN_PASSWORD)
    physician = _log_in(clinic, PHYSICIAN, PHYSICIAN_PASSWORD)
    try:
        patient_id = _patient(admin, "Adeyemi")
        with admin.session() as session:
            reported = add_medication(session, admin.actor, patient_id, "bupropion 150 mg")
            stopped = add_medication(session, admin.actor, patient_id, "melatonin 3 mg")
            stop_medication(session, admin.actor, stopped.id, reason="patient_stopped")
            form = record_questionnaire(session, admin.actor, patient_id, "PHQ-9", PHQ_ITEM9,
                                        TODAY, today=TODAY)
            look_up = record_pdmp_check(session, admin.actor, patient_id, state="NJ",
                                        not_checked_reason="NJPMP down for maintenance")
        assert form.safety_alert and look_up.is_designee
        with physician.session() as session:
            verified = verify_medication(session, physician.actor, reported.id)
            stop_medication(session, physician.actor, verified.id, reason="replaced")
            record = change_status(session, physician.actor, patient_id, "active",
                                   "Screening complete")
            alert_id = session.execute(
                DoseBreachAlert.__table__.select().where(
                    DoseBreachAlert.patient_id == clinic.patient_id
                )
            ).first().id
            acked = acknowledge_dose_alert(session, physician.actor, alert_id, "Called; fine")
        assert verified.verified_by == PHYSICIAN and record.status == "active"
        assert acked.acknowledged_by == PHYSICIAN
        with physician.session() as session:
            late = session.execute(
                DoseBreachAlert.__table__.select().where(DoseBreachAlert.id == alert_id)
            ).first()
        assert late.acknowledged_at > datetime.now(UTC) - timedelta(minutes=5)
    finally:
        admin.close()
        physician.close()

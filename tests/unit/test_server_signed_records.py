"""Signed and issued records on the practice server: frozen by the database itself.

A physician holds UPDATE and DELETE on the clinical tables (the grants), so these tests show
that with ``psql`` and their own password they still cannot change a signed protocol version,
a signed review or its decisions, an issued prescription, a fill, a signature, a consent or a
printed plan: a trigger refuses it in words (SQLSTATE P0001, raised inside the trigger's own
function, the owner refused too, whom no grant limits). The transitions the services make still
work on the server: signing a draft, discontinuing a protocol, voiding a prescription, fills.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import psycopg
import pytest

from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Role
from ketadesk.storage.compliance.prescriptions import (
    PrescriptionRequest,
    issue_prescription,
    record_fill,
    void_prescription,
)
from ketadesk.storage.outcomes.outcomes import acknowledge_safety_alert, record_questionnaire
from ketadesk.storage.protocols import protocols as protocol_store
from ketadesk.storage.reviews.interaction_reviews import (
    record_decision,
    run_review,
    sign_review,
)
from ketadesk.storage.server.server_practice import ServerPractice
from tests.server_practice import drop_database, new_database, owner_connection, psql_connection
from tests.unit.test_outcomes_storage import PHQ_ITEM9
from tests.unit.test_prescription_storage import ready_patient
from tests.unit.test_review_storage import add_patient, decide_all

PHYSICIAN, ADMIN = "drquill", "frontdesk"
PHYSICIAN_PASSWORD = "correct horse battery"
ADMIN_PASSWORD = "staple gun lighthouse"
TODAY = datetime.now(UTC).astimezone().date()


def _prescribe(server: ServerPractice, *, admin: object) -> SimpleNamespace:
    """A patient with a signed review, a signed protocol, an issued prescription and a fill,
    and a PHQ-9 whose item-9 alert the physician acknowledged."""
    practice = SimpleNamespace(physician=server.actor, admin=admin)
    with server.session() as session:
        patient_id = ready_patient(practice, session)
        rx = issue_prescription(
            session, server.actor, patient_id, PrescriptionRequest(quantity=30, refills=3)
        )
        record_fill(session, server.actor, rx.id, filled_on=TODAY, today=TODAY)
        form = record_questionnaire(session, admin, patient_id, "PHQ-9", PHQ_ITEM9, TODAY,
                                    today=TODAY)
        acknowledge_safety_alert(session, server.actor, form.id, "Called; safe plan")
    return SimpleNamespace(patient_id=patient_id, prescription_id=rx.id)


@pytest.fixture(scope="module")
def signed_practice(practice_server):
    """A practice whose physician signed, through the services, everything these tests touch."""
    address = new_database(practice_server)
    ca = practice_server.ca_certificate
    try:
        ServerPractice.create(
            address,
            ca,
            owner_password=practice_server.owner_password(),
            user_name=PHYSICIAN,
            full_name="Dr Ada Quill",
            password=PHYSICIAN_PASSWORD,
        )
        physician = ServerPractice.log_in(address, ca, PHYSICIAN, PHYSICIAN_PASSWORD)
        physician.add_user(ADMIN, "Frank Desk", Role.ADMIN, ADMIN_PASSWORD)
        admin = ServerPractice.log_in(address, ca, ADMIN, ADMIN_PASSWORD)
        admin.close()
        made = _prescribe(physician, admin=admin.actor)
        with physician.session() as session:  # a signed review with decisions on its flags
            reviewed = add_patient(session, mrn="KD-SIGNED-1")
            view = run_review(session, reviewed)
            sign_review(session, physician.actor, reviewed, decide_all(view),
                        expected_fingerprint=view.fingerprint,
                        read_by_physician=view.not_checked)
        physician.close()
        with psql_connection(practice_server, address, PHYSICIAN, PHYSICIAN_PASSWORD) as raw:
            raw.execute(
                "INSERT INTO signed_plan_contents (protocol_version_id, content_hash, "
                "document_json, calendar_weeks_shown, first_exported_by, created_at, "
                "updated_at) SELECT id, repeat('c', 64), '{}', 4, 'drquill', now(), now() "
                "FROM protocol_versions WHERE status = 'signed' LIMIT 1"
            )
            # Signatures are not yet made on a server (no per-user keys there): one as a
            # file practice stores it, so the trigger has a row to keep.
            raw.execute(
                "INSERT INTO content_signatures (uid, subject_kind, subject_id, content_hash, "
                "signed_by, signed_at, signature) SELECT md5(id::text), 'protocol_version', "
                "id, content_hash, signed_by, signed_at, repeat('s', 88) "
                "FROM protocol_versions WHERE status = 'signed'"
            )
            counts = raw.execute(
                "SELECT (SELECT count(*) FROM review_decisions), "
                "(SELECT count(*) FROM prescription_fills), "
                "(SELECT count(*) FROM consent_records)"
            ).fetchone()
        assert all(n > 0 for n in counts), counts
        yield SimpleNamespace(cluster=practice_server, address=address, **vars(made))
    finally:
        drop_database(practice_server, address)


def _physician(signed_practice) -> psycopg.Connection:
    return psql_connection(
        signed_practice.cluster, signed_practice.address, PHYSICIAN, PHYSICIAN_PASSWORD
    )


def _log_in(signed_practice, user: str = PHYSICIAN, password: str = PHYSICIAN_PASSWORD):
    return ServerPractice.log_in(
        signed_practice.address, signed_practice.cluster.ca_certificate, user, password
    )


SIGNED_VERSION = "A signed protocol version cannot be changed or removed"
SIGNED_REVIEW = "A signed interaction review cannot be changed or removed"
SIGNED_DECISION = "The decisions of a signed interaction review cannot be changed"
ISSUED = "An issued prescription cannot be changed; void it with a reason"

# (table the physician holds the grant on, the statement, what the database answers)
FORBIDDEN = [
    ("protocol_versions", "UPDATE protocol_versions SET protocol_json = '{}' "
     "WHERE status = 'signed'", SIGNED_VERSION),
    ("protocol_versions", "UPDATE protocol_versions SET status = 'draft', signed_by = NULL, "
     "signed_at = NULL, signed_by_full_name = NULL WHERE status = 'signed'", SIGNED_VERSION),
    ("protocol_versions", "UPDATE protocol_versions SET weight_kg = 200 "
     "WHERE status = 'signed'", SIGNED_VERSION),
    ("protocol_versions", "DELETE FROM protocol_versions WHERE status = 'signed'",
     SIGNED_VERSION),
    ("patient_protocols", "DELETE FROM patient_protocols", SIGNED_VERSION),
    ("patient_protocols", "UPDATE patient_protocols SET created_by = 'frontdesk'",
     "A protocol is only ever discontinued"),
    ("interaction_reviews", "UPDATE interaction_reviews SET snapshot_json = '{}' "
     "WHERE status = 'signed'", SIGNED_REVIEW),
    ("interaction_reviews", "UPDATE interaction_reviews SET signed_by = 'frontdesk' "
     "WHERE status = 'signed'", SIGNED_REVIEW),
    ("interaction_reviews", "DELETE FROM interaction_reviews", SIGNED_REVIEW),
    ("review_decisions", "UPDATE review_decisions SET decision = 'hold_ketamine'",
     SIGNED_DECISION),
    ("review_decisions", "UPDATE review_decisions SET override_reason = 'after the fact'",
     SIGNED_DECISION),
    ("review_decisions", "DELETE FROM review_decisions", SIGNED_DECISION),
    ("review_decisions", "INSERT INTO review_decisions (uid, version, review_id, rule_id, "
     "carry_forward_key, severity, decision, note, note_for_patient, override_reason, "
     "decided_by, decided_by_full_name, decided_at) SELECT md5(random()::text), 1, id, 'r', "
     "'added-later', 'major', 'hold_ketamine', '', false, '', 'drquill', '', now() "
     "FROM interaction_reviews WHERE status = 'signed'", SIGNED_DECISION),
    ("prescriptions", "UPDATE prescriptions SET quantity = 90", ISSUED),
    ("prescriptions", "UPDATE prescriptions SET refills = 5, status = 'void', "
     "void_reason = 'wrong refills', voided_by = session_user, voided_at = now()", ISSUED),
    ("prescriptions", "UPDATE prescriptions SET status = 'void', void_reason = 'x', "
     "voided_by = 'frontdesk', voided_at = now()", "voided in the name of the user voiding it"),
    ("prescriptions", "DELETE FROM prescriptions", "An issued prescription is never removed"),
    ("prescription_fills", "UPDATE prescription_fills SET quantity = 1",
     "A recorded dispensing cannot be changed"),
    ("prescription_fills", "DELETE FROM prescription_fills",
     "A recorded dispensing cannot be changed"),
    ("content_signatures", "UPDATE content_signatures SET signature = 'forged'",
     "A physician's signature cannot be changed"),
    ("content_signatures", "DELETE FROM content_signatures",
     "A physician's signature cannot be changed"),
    ("consent_records", "UPDATE consent_records SET signed_on = signed_on - 30",
     "A patient's signed consent cannot be changed"),
    ("consent_templates", "UPDATE consent_templates SET title = 'Other words'",
     "A consent text version is never edited"),
    ("safety_alert_acks", "UPDATE safety_alert_acks SET note = 'never called'",
     "An acknowledged safety alert cannot be changed"),
    ("safety_alert_acks", "DELETE FROM safety_alert_acks",
     "An acknowledged safety alert cannot be changed"),
    ("questionnaire_responses", "UPDATE questionnaire_responses SET answers_json = '[]'",
     "A questionnaire whose item-9 alert a physician acknowledged cannot"),
    ("questionnaire_responses", "DELETE FROM questionnaire_responses",
     "A questionnaire whose item-9 alert a physician acknowledged cannot"),
    ("signed_plan_contents", "UPDATE signed_plan_contents SET document_json = '{}'",
     "A printed signed plan is kept as it was printed"),
    ("signed_plan_contents", "DELETE FROM signed_plan_contents",
     "A printed signed plan is kept as it was printed"),
]
GUARDED = sorted({table for table, _, _ in FORBIDDEN})


def _contents(connection: psycopg.Connection) -> dict[str, str]:
    """Every row of every guarded table, as one fingerprint per table."""
    return {
        table: connection.execute(
            f"SELECT md5(coalesce(string_agg(to_jsonb(t)::text, ',' ORDER BY t.id), '')) "
            f"FROM {table} t"
        ).fetchone()[0]
        for table in GUARDED
    }


@pytest.mark.parametrize(("table", "statement", "answer"), FORBIDDEN)
def test_the_physician_with_psql_cannot_change_a_signed_record(
    signed_practice, table, statement, answer
):
    with _physician(signed_practice) as physician:
        # The grant allows the write: it is the trigger, not a privilege, that refuses.
        assert physician.execute(
            "SELECT has_table_privilege(session_user, %s, 'INSERT, UPDATE, DELETE')", (table,)
        ).fetchone() == (True,)
        assert physician.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0
        before = _contents(physician)
        with pytest.raises(psycopg.errors.RaiseException) as refused:
            physician.execute(statement)
        assert refused.value.sqlstate == "P0001"
        assert answer in (refused.value.diag.message_primary or "")
        assert "PL/pgSQL function ketadesk_" in (refused.value.diag.context or "")
        assert _contents(physician) == before


@pytest.mark.parametrize(
    ("statement", "answer"),
    [(s, a) for _, s, a in FORBIDDEN if "DELETE" in s or "protocol_json" in s],
)
def test_not_even_the_owner_whom_no_grant_limits_changes_a_signed_record(
    signed_practice, statement, answer
):
    cluster, address = signed_practice.cluster, signed_practice.address
    with owner_connection(cluster, address.database) as owner:
        assert owner.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (True,)
        with pytest.raises(psycopg.errors.RaiseException, match=answer):
            owner.execute(statement.replace("session_user", "'drquill'"))


def test_changing_a_signed_version_through_a_session_is_refused_in_words(signed_practice):
    from sqlalchemy import select

    from ketadesk.models.protocols import ProtocolVersion

    physician = _log_in(signed_practice)
    try:
        with (
            pytest.raises(UserFacingError, match=SIGNED_VERSION + r".* Nothing was changed\.$"),
            physician.session() as session,
        ):
            version = session.execute(
                select(ProtocolVersion).where(ProtocolVersion.status == "signed").limit(1)
            ).scalar_one()
            version.template_name = "changed after signing"
            session.flush()
    finally:
        physician.close()


def test_the_transitions_the_services_make_still_work_on_the_server(signed_practice):
    physician = _log_in(signed_practice)
    admin = _log_in(signed_practice, ADMIN, ADMIN_PASSWORD)
    try:
        made = _prescribe(physician, admin=admin.actor)
        with physician.session() as session:
            # A refill recorded by the front desk, then a void with a reason.
            record_fill(session, admin.actor, made.prescription_id, filled_on=TODAY, today=TODAY)
        with admin.session() as session:
            filled = record_fill(session, admin.actor, made.prescription_id,
                                 filled_on=TODAY, today=TODAY)
        assert [f.fill_number for f in filled.fills] == [0, 1, 2]
        with physician.session() as session:
            voided = void_prescription(session, physician.actor, made.prescription_id,
                                       "Pharmacy asked for a new script")
        assert (voided.is_void, voided.voided_by) == (True, PHYSICIAN)

        # Editing a signed protocol is a new draft, saved twice, then signed.
        with physician.session() as session:
            draft = protocol_store.create_draft_from_previous(session, physician.actor,
                                                              made.patient_id)
            draft = protocol_store.save_draft(session, physician.actor, made.patient_id,
                                              draft.protocol, TODAY + timedelta(days=1))
            signed = protocol_store.sign_version(session, physician.actor, draft.version_id,
                                                 acknowledged_warnings=_warnings(
                                                     session, physician, draft))
        assert (signed.status, signed.number) == ("signed", 2)

        with physician.session() as session:
            stopped = protocol_store.discontinue_protocol(session, physician.actor,
                                                          signed.protocol_id, "Course complete")
        assert stopped.status == "discontinued"
    finally:
        physician.close()
        admin.close()
    with _physician(signed_practice) as raw:
        with pytest.raises(psycopg.errors.RaiseException, match="voided prescription cannot"):
            raw.execute("UPDATE prescriptions SET void_reason = 'other' WHERE id = %s",
                        (made.prescription_id,))
        with pytest.raises(psycopg.errors.RaiseException, match="discontinued protocol cannot"):
            raw.execute("UPDATE patient_protocols SET status = 'active', "
                        "discontinued_reason = NULL WHERE id = %s", (signed.protocol_id,))


def _warnings(session, physician, draft) -> list[str]:
    check = protocol_store.signing_check(session, physician.actor, draft.patient_id,
                                         draft.protocol, TODAY)
    return [m.code for m in check.warnings]


def test_a_physician_with_psql_cannot_sign_a_draft_in_another_name(signed_practice):
    physician = _log_in(signed_practice)
    try:
        with physician.session() as session:
            draft = protocol_store.create_draft_from_previous(session, physician.actor,
                                                              signed_practice.patient_id)
            reviewed = add_patient(session, mrn="KD-SIGNED-3")
            run_review(session, reviewed)
            record_decision(session, physician.actor, reviewed,
                            decide_all(run_review(session, reviewed))[0])
    finally:
        physician.close()
    with _physician(signed_practice) as raw:
        review_id = raw.execute(
            "SELECT id FROM interaction_reviews WHERE status = 'draft' ORDER BY id DESC LIMIT 1"
        ).fetchone()[0]
        for table, row_id, what in (
            ("protocol_versions", draft.version_id, "A protocol version is signed only"),
            ("interaction_reviews", review_id, "An interaction review is signed only"),
        ):
            with pytest.raises(psycopg.errors.RaiseException, match=what):
                raw.execute(
                    f"UPDATE {table} SET status = 'signed', signed_by = 'drother', "
                    "signed_by_full_name = 'Dr Other', signed_at = now() WHERE id = %s",
                    (row_id,),
                )
            assert raw.execute(
                f"SELECT status FROM {table} WHERE id = %s", (row_id,)
            ).fetchone() == ("draft",)


def _copy_of(table: str, changes: str, where: str = "") -> str:
    """An INSERT of a copy of the table's first row (``where``) with ``changes`` (JSON)."""
    return (
        f"INSERT INTO {table} SELECT (jsonb_populate_record(NULL::{table}, to_jsonb(t) || "
        f"jsonb_build_object('id', 90000 + t.id, 'uid', md5(random()::text), "
        f"'content_hash', md5(random()::text) || md5(random()::text)) || "
        f"'{changes}'::jsonb)).* FROM {table} t {where} ORDER BY t.id LIMIT 1"
    )


@pytest.mark.parametrize(
    ("statement", "answer"),
    [
        (_copy_of("protocol_versions", '{"number": 99, "signed_by": "drother"}',
                  "WHERE t.status = 'signed'"),
         "A protocol version is signed only in the name"),
        (_copy_of("interaction_reviews", '{"signed_by": "drother"}',
                  "WHERE t.status = 'signed'"),
         "An interaction review is signed only in the name"),
        (_copy_of("prescriptions", '{"prescriber": "drother"}'),
         "A prescription is issued only in the name"),
        (_copy_of("content_signatures", '{"signed_by": "drother"}'),
         "A signature is added only in the name"),
    ],
)
def test_a_physician_with_psql_cannot_add_a_record_signed_in_another_name(
    signed_practice, statement, answer
):
    with _physician(signed_practice) as physician:
        with pytest.raises(psycopg.errors.RaiseException, match=answer):
            physician.execute(statement)
        # The same copy in their own name is only refused by what the table itself checks.
        own = statement.replace("drother", PHYSICIAN)
        with physician.transaction():
            assert physician.execute(own).rowcount == 1
            raise psycopg.Rollback()


def test_a_draft_review_keeps_taking_decisions_and_is_signed(signed_practice):
    physician = _log_in(signed_practice)
    try:
        with physician.session() as session:
            patient_id = add_patient(session, mrn="KD-SIGNED-2")
            view = run_review(session, patient_id)
            decisions = decide_all(view)
            assert decisions
            signed = sign_review(session, physician.actor, patient_id, decisions,
                                 expected_fingerprint=view.fingerprint,
                                 read_by_physician=view.not_checked)
        assert signed.review_id > 0
    finally:
        physician.close()


def test_the_file_practice_has_none_of_these_triggers(practice):
    from sqlalchemy import text

    with practice.db.session() as session:
        names = session.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        ).scalars().all()
    assert not [n for n in names if n.endswith(("_signed", "_frozen"))]



def test_every_frozen_or_guarded_table_is_a_table_of_the_models():
    from ketadesk.models import Base
    from ketadesk.storage.server.signed_records import FROZEN_TABLES, GUARDED_TABLES

    named = set(FROZEN_TABLES) | {table for table, _, _ in GUARDED_TABLES}
    assert named <= set(Base.metadata.tables)
    assert named == set(GUARDED)

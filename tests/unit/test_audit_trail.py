"""The audit trail is append-only and hash-chained; tampering is named precisely.

Normal use and the refused UPDATE/DELETE run on both back ends; the tampering tests edit the
file through its raw SQLCipher connection and the key-slot file's anchor, so they stay on a
file (a server's own tampering tests: test_server_audit_chain, test_server_psql_attacks)."""

from __future__ import annotations

import pytest
from sqlalchemy import exc

from ketadesk.core import audit_actions
from ketadesk.core.audit_chain import verify_chain
from ketadesk.core.errors import UserFacingError
from ketadesk.storage.security.audit_log import record_event, verify_audit
from ketadesk.storage.security.engine import raw_connection


def _add_events(practice, count: int = 5) -> None:
    with practice.db.session() as session:
        for i in range(count):
            record_event(
                session,
                practice.physician,
                audit_actions.PATIENT_VIEWED,
                patient_id=i + 1,
                detail="chart opened",
            )


def _tamper(practice, *statements: str) -> None:
    """Edit the decrypted database directly, as an attacker holding the key could."""
    connection = raw_connection(practice.path, practice.db.database_key())
    connection.execute("DROP TRIGGER audit_events_no_update")
    connection.execute("DROP TRIGGER audit_events_no_delete")
    for statement in statements:
        connection.execute(statement)
    connection.commit()
    connection.close()


def test_chain_is_intact_after_normal_use(practice_on):
    _add_events(practice_on)
    with practice_on.db.session() as session:
        verdict = verify_audit(session)
    assert verdict.is_intact
    assert verdict.describe().startswith("audit chain intact (")


def test_database_refuses_update_and_delete_of_audit_rows(practice_on):
    _add_events(practice_on, 1)
    from sqlalchemy import text

    # A file's triggers refuse; a server grants no UPDATE or DELETE on the table at all.
    refusal = (
        (exc.DatabaseError, "append-only") if practice_on.back_end == "file"
        else (UserFacingError, "your role may not make it. Nothing was saved.")
    )
    for statement in ("UPDATE audit_events SET detail = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(refusal[0], match=refusal[1]):
            with practice_on.db.session() as session:
                session.execute(text(statement))
    with practice_on.db.session() as session:
        assert verify_audit(session).is_intact


@pytest.mark.parametrize(
    ("statement", "first_bad", "problem"),
    [
        ("UPDATE audit_events SET detail = 'edited' WHERE id = 6", 6, "altered"),
        ("UPDATE audit_events SET user_name = 'someone' WHERE id = 4", 4, "altered"),
        ("UPDATE audit_events SET occurred_at = '2020-01-01 00:00:00' WHERE id = 7", 7, "altered"),
        ("DELETE FROM audit_events WHERE id = 5", 6, "event 5 before it was removed"),
        ("UPDATE audit_events SET id = 100 WHERE id = 3", 4, "out of order"),
    ],
)
def test_tampering_names_the_first_bad_event(practice, statement, first_bad, problem):
    # The prepared practice holds 4 events (created, user added, user added, login).
    _add_events(practice, 6)
    _tamper(practice, statement)
    with practice.db.session() as session:
        verdict = verify_audit(session)
    assert not verdict.is_intact
    assert verdict.first_bad_seq == first_bad
    assert problem in verdict.problem
    assert f"event {first_bad}" in verdict.describe()


def test_swapping_two_rows_is_detected(practice):
    _add_events(practice, 4)
    _tamper(
        practice,
        "UPDATE audit_events SET id = -1 WHERE id = 4",
        "UPDATE audit_events SET id = 4 WHERE id = 5",
        "UPDATE audit_events SET id = 5 WHERE id = -1",
    )
    with practice.db.session() as session:
        verdict = verify_audit(session)
    assert not verdict.is_intact
    assert verdict.first_bad_seq == 5
    assert "out of order" in verdict.problem


def test_verify_chain_of_nothing_is_intact():
    assert verify_chain([]).is_intact


def test_login_records_a_failed_chain_check(practice, prepared_practice):
    from ketadesk.storage.security.database import PracticeDatabase
    from tests.conftest import PASSWORD, PHYSICIAN

    _add_events(practice, 3)
    _tamper(practice, "UPDATE audit_events SET detail = 'edited' WHERE id = 2")
    practice.db.close()
    db, outcome = PracticeDatabase.unlock(practice.path, PHYSICIAN, PASSWORD)
    assert not outcome.audit.is_intact
    assert outcome.audit.first_bad_seq == 2
    db.close()


def test_removing_the_newest_events_is_noticed_through_the_anchor(practice):
    from ketadesk.storage.security.database import PracticeDatabase
    from ketadesk.storage.security.keyslots import KeySlotFile
    from tests.conftest import PASSWORD, PHYSICIAN

    _add_events(practice, 5)
    key = practice.db.database_key()
    practice.db.close()  # remembers the newest event beside the database
    anchor = KeySlotFile.load(practice.path).audit_anchor
    assert anchor is not None and anchor.seq == 9
    from ketadesk.storage.security.engine import raw_connection

    connection = raw_connection(practice.path, key)
    connection.execute("DROP TRIGGER audit_events_no_delete")
    connection.execute("DELETE FROM audit_events WHERE seq >= 8")
    connection.commit()
    connection.close()
    db, outcome = PracticeDatabase.unlock(practice.path, PHYSICIAN, PASSWORD)
    try:
        # The log-in itself is now event 8; the anchor's event 9 is gone.
        assert not outcome.audit.is_intact
        assert "newest events were removed" in outcome.audit.problem
        verdict = db.verify_audit_trail()
        assert not verdict.is_intact
    finally:
        db.close()
    # The anchor never moves backwards, so the removal stays noticed.
    assert KeySlotFile.load(practice.path).audit_anchor.seq >= 9


def test_anchor_follows_normal_use(practice):
    from ketadesk.storage.security.keyslots import KeySlotFile

    _add_events(practice, 2)
    practice.db.close()
    anchor = KeySlotFile.load(practice.path).audit_anchor
    from ketadesk.storage.security.database import PracticeDatabase
    from tests.conftest import PASSWORD, PHYSICIAN

    db, outcome = PracticeDatabase.unlock(practice.path, PHYSICIAN, PASSWORD)
    assert outcome.audit.is_intact
    assert db.verify_audit_trail().is_intact
    db.close()
    assert KeySlotFile.load(practice.path).audit_anchor.seq == anchor.seq + 1

"""The log-in audit check is bounded and still refuses what it used to.

At log-in only the events after the newest checkpoint are walked and only their signatures
checked; everything older is checked by the background walk (chain and signatures, in a process
of its own), which raises the same alarm. A long log-in walk records a checkpoint of its own, so
a practice always closed before the full walk ends does not see its log-in check grow. A
checkpoint moved, edited or added by hand is refused.

File only: the log-in checkpoint walk is the file's (a server's chain is kept by the server:
test_server_audit_chain).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.core.audit_chain import event_hash
from ketadesk.models.audit import AuditEvent
from ketadesk.storage.security.audit_checkpoint import (
    LOGIN_CHECKPOINT_AFTER,
    latest_checkpoint,
    verify_tail,
)
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.keyslots import KeySlotFile
from tests.conftest import PASSWORD, PHYSICIAN, copy_practice
from tests.reliability.test_background_checks import _tamper


@pytest.fixture(scope="module")
def checkpointed(
    prepared_practice: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, bytes, int, int]:
    """A closed practice: 40 events, a full walk (its checkpoint), 20 events after it.
    Returns (path, key, the seq the checkpoint names, the checkpoint event's own seq)."""
    path = copy_practice(prepared_practice, tmp_path_factory.mktemp("login-checkpoint"))
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    for count in (40, 20):
        _view_charts(db, outcome.actor, count)
        if count == 40:
            assert db.check_whole_audit_trail(outcome.actor).is_intact
    with db.session() as session:
        checkpoint = latest_checkpoint(session)
    key = db.database_key()
    db.close()
    assert checkpoint is not None and checkpoint.recorded_as is not None
    return path, key, checkpoint.seq, checkpoint.recorded_as


def _view_charts(db: PracticeDatabase, actor, count: int) -> None:
    with db.session() as session:
        for number in range(count):
            record_event(session, actor, audit_actions.PATIENT_VIEWED,
                         patient_id=number % 9 + 1, detail="chart opened")


def _row(path: Path, key: bytes, seq: int) -> tuple:
    from ketadesk.storage.security.engine import raw_connection

    connection = raw_connection(path, key)
    try:
        return connection.execute(
            "SELECT id, seq, row_hash, signed_by, signature FROM audit_events WHERE seq = ?",
            (seq,),
        ).fetchone()
    finally:
        connection.close()


def _newest(path: Path, key: bytes) -> tuple:
    from ketadesk.storage.security.engine import raw_connection

    connection = raw_connection(path, key)
    try:
        return connection.execute(
            "SELECT max(id), max(seq) FROM audit_events"
        ).fetchone()
    finally:
        connection.close()


def _unlocked(path: Path):
    return PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)


def test_a_bad_signature_after_the_checkpoint_is_refused_at_log_in(checkpointed, tmp_path):
    path, key, _named, recorded_as = checkpointed
    copy = copy_practice(path, tmp_path / "after")
    target = recorded_as + 5
    other = _row(copy, key, recorded_as + 6)
    # The event is unchanged; only its signature is another event's (a re-signing by hand).
    _tamper(copy, key, [f"UPDATE audit_events SET signature = '{other[4]}' WHERE seq = {target}"])
    db, outcome = _unlocked(copy)
    try:
        assert not outcome.audit.is_intact
        assert outcome.audit.first_bad_seq == target
        assert "signature does not verify" in outcome.audit.problem
    finally:
        db.close()


def test_unsigned_events_after_the_checkpoint_are_refused_at_log_in(checkpointed, tmp_path):
    path, key, named, _recorded_as = checkpointed
    copy = copy_practice(path, tmp_path / "stripped")
    _newest_id, newest = _newest(copy, key)
    # Every signature after the checkpoint removed: not "events from before signing keys".
    _tamper(copy, key, [
        f"UPDATE audit_events SET signed_by = NULL, signature = NULL WHERE seq > {named}"
    ])
    db, outcome = _unlocked(copy)
    try:
        assert not outcome.audit.is_intact
        assert outcome.audit.first_bad_seq == named + 1
        assert "not signed" in outcome.audit.problem
    finally:
        db.close()
    assert newest > named + 1


def test_a_bad_signature_before_the_checkpoint_is_found_by_the_background_walk(
    checkpointed, tmp_path
):
    path, key, named, _recorded_as = checkpointed
    copy = copy_practice(path, tmp_path / "before")
    target = named - 4
    other = _row(copy, key, named - 3)
    _tamper(copy, key, [f"UPDATE audit_events SET signature = '{other[4]}' WHERE seq = {target}"])
    db, outcome = _unlocked(copy)
    try:
        assert outcome.audit.is_intact  # log-in checked only the signatures after the checkpoint
        verdict = db.check_whole_audit_trail(outcome.actor)
        assert not verdict.is_intact and verdict.first_bad_seq == target
        assert "signature does not verify" in verdict.problem
        with db.session() as session:
            newest = session.execute(
                select(AuditEvent.action, AuditEvent.detail).order_by(AuditEvent.seq.desc())
            ).first()
        assert newest is not None and newest[0] == audit_actions.AUDIT_CHECK_FAILED
        assert f"broken at event {target}" in newest[1]
    finally:
        db.close()


def test_a_checkpoint_moved_to_name_itself_or_a_later_event_is_refused(checkpointed, tmp_path):
    path, key, _named, recorded_as = checkpointed
    copy = copy_practice(path, tmp_path / "moved-forward")
    _id, newest = _newest(copy, key)
    newest_hash = _row(copy, key, newest)[2]
    # Re-pointed at the newest event, with its real hash: log-in would otherwise walk nothing.
    _tamper(copy, key, [
        f"UPDATE audit_events SET detail = 'events 1-{newest} intact; event {newest} hash "
        f"{newest_hash}' WHERE seq = {recorded_as}"
    ])
    db, outcome = _unlocked(copy)
    try:
        assert not outcome.audit.is_intact
        assert outcome.audit.first_bad_seq == recorded_as
        assert f"names event {newest}, which is not before it" in outcome.audit.problem
    finally:
        db.close()


def test_a_checkpoint_moved_to_an_earlier_event_is_refused(checkpointed, tmp_path):
    path, key, named, recorded_as = checkpointed
    copy = copy_practice(path, tmp_path / "moved-back")
    earlier = named - 10
    earlier_hash = _row(copy, key, earlier)[2]
    _tamper(copy, key, [
        f"UPDATE audit_events SET detail = 'events 1-{earlier} intact; event {earlier} hash "
        f"{earlier_hash}' WHERE seq = {recorded_as}"
    ])
    db, outcome = _unlocked(copy)
    try:
        assert not outcome.audit.is_intact
        assert outcome.audit.first_bad_seq == recorded_as
        assert outcome.audit.problem == "its content was altered"
    finally:
        db.close()


@pytest.mark.parametrize("signature", ["none", "copied"])
def test_a_checkpoint_added_by_hand_is_refused(checkpointed, tmp_path, signature):
    """A forged checkpoint at the end of the chain, its hash computed correctly, naming the
    newest event: unsigned, or with another event's signature."""
    path, key, _named, recorded_as = checkpointed
    copy = copy_practice(path, tmp_path / f"forged-{signature}")
    newest_id, newest = _newest(copy, key)
    _rid, _seq, newest_hash, signed_by, copied = _row(copy, key, newest)
    at = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    detail = f"events 1-{newest} intact; event {newest} hash {newest_hash}"
    row_hash = event_hash(newest_hash, newest + 1, at, PHYSICIAN, "physician", None,
                          audit_actions.AUDIT_VERIFIED, detail)
    signed = "NULL, NULL" if signature == "none" else f"'{signed_by}', '{copied}'"
    _tamper(copy, key, [
        "INSERT INTO audit_events (id, seq, occurred_at, user_name, role, patient_id, action, "
        f"detail, prev_hash, row_hash, signed_by, signature) VALUES ({newest_id + 1}, "
        f"{newest + 1}, '{at.strftime('%Y-%m-%d %H:%M:%S.%f')}', '{PHYSICIAN}', 'physician', "
        f"NULL, '{audit_actions.AUDIT_VERIFIED}', '{detail}', '{newest_hash}', '{row_hash}', "
        f"{signed})"
    ])
    db, outcome = _unlocked(copy)
    try:
        assert not outcome.audit.is_intact
        assert outcome.audit.first_bad_seq == newest + 1
        assert ("not signed" if signature == "none" else "does not verify") in (
            outcome.audit.problem
        )
    finally:
        db.close()
    assert recorded_as < newest


def test_a_long_log_in_walk_records_a_checkpoint_so_the_next_stays_short(checkpointed, tmp_path):
    """A practice always closed before the full walk ends: the log-in check records a
    checkpoint after a long walk, so the next log-in walks only what came after it."""
    path, key, named, _recorded_as = checkpointed
    copy = copy_practice(path, tmp_path / "bounded")
    db, outcome = _unlocked(copy)
    _view_charts(db, outcome.actor, LOGIN_CHECKPOINT_AFTER + 50)
    db.close()  # before any full walk
    _id, before_login = _newest(copy, key)

    db, outcome = _unlocked(copy)  # walks the 570-odd events after the walk's checkpoint
    try:
        assert outcome.audit.is_intact
        db.wait_for_page_check()
        with db.session() as session:
            checkpoint = latest_checkpoint(session)
            signed_by = session.execute(
                select(AuditEvent.signed_by).where(AuditEvent.seq == checkpoint.recorded_as)
            ).scalar_one() if checkpoint else None
        assert checkpoint is not None
        assert (checkpoint.first, checkpoint.seq) == (named + 1, before_login)
        assert signed_by == PHYSICIAN  # the user who logged in signs it
        _view_charts(db, outcome.actor, 30)
    finally:
        db.close()

    db = PracticeDatabase.open_with_key(copy, key, KeySlotFile.load(copy))
    try:
        with db.session() as session:
            tail = verify_tail(session, None, latest_checkpoint(session))
        assert tail.verdict.is_intact
        assert tail.walked < 40  # the log-in's checkpoint, the events after it
    finally:
        db.close()

    # What lies before the log-in's checkpoint is left to the background walk, as before the
    # walk's own: an edit there passes the next log-in and is named by the walk.
    target = named + 100
    _tamper(copy, key, [f"UPDATE audit_events SET detail = 'x' WHERE seq = {target}"])
    db, outcome = _unlocked(copy)
    try:
        assert outcome.audit.is_intact
        verdict = db.check_whole_audit_trail(outcome.actor)
        assert not verdict.is_intact and verdict.first_bad_seq == target
    finally:
        db.close()


def test_a_short_log_in_walk_records_no_checkpoint(checkpointed, tmp_path):
    path, _key, named, _recorded_as = checkpointed
    copy = copy_practice(path, tmp_path / "short")
    db, _outcome = _unlocked(copy)
    try:
        db.wait_for_page_check()
        with db.session() as session:
            checkpoint = latest_checkpoint(session)
        assert checkpoint is not None and checkpoint.seq == named  # still the walk's
    finally:
        db.close()

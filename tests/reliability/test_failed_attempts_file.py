"""Forged, deleted and concurrent failed log-ins (issue 16).

Observed before: a hand-written ``attempts.json`` put 60 back-dated ``login_failed`` events "by
physician" into the chain at the next log-in; deleting it erased 7 real failures and reset the
backoff; one global counter let anyone lock everyone out; concurrent failures crashed on a
shared ``.tmp`` name. Each is performed here and must be refused or named.

File only: the failed-attempts file sits beside a practice file (a server checks passwords
itself).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.models.audit import AuditEvent
from ketadesk.storage.security import attempts
from ketadesk.storage.security.database import PracticeDatabase
from tests.conftest import ADMIN, PASSWORD, PHYSICIAN, OpenPractice


def _actions(path: Path) -> list[tuple[str, str]]:
    db, _ = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    try:
        with db.session() as session:
            rows = session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()
            return [(e.action, e.user_name) for e in rows]
    finally:
        db.close()


def _fail(path: Path, user: str, times: int) -> None:
    for number in range(times):
        if number < attempts.FREE_ATTEMPTS:
            with pytest.raises(UserFacingError, match="Wrong user name or password"):
                PracticeDatabase.unlock(path, user, "not the password at all")
        else:  # later tries wait for the backoff: count them as they would be, after the wait
            attempts.record_failure(path, user)


def test_a_hand_written_attempts_file_is_refused_not_replayed(practice: OpenPractice) -> None:
    practice.db.close()
    forged_at = datetime(2025, 1, 1, tzinfo=UTC)
    forged = {
        "format": attempts.FORMAT,
        "generation": 99,
        "users": {},
        "failures": [
            {"at": (forged_at + timedelta(minutes=i)).isoformat(), "user_name": PHYSICIAN}
            for i in range(60)
        ],
        "refused_files": 0,
        "mac": "0" * 64,
    }
    attempts.attempts_path(practice.path).write_text(json.dumps(forged))
    actions = _actions(practice.path)
    assert (audit_actions.LOGIN_FAILED, PHYSICIAN) not in actions
    assert (audit_actions.FAILED_ATTEMPTS_REFUSED, "system") in actions
    assert attempts.failed_attempts(practice.path) == []


def test_an_edited_file_is_refused_even_with_the_old_mac(practice: OpenPractice) -> None:
    practice.db.close()
    _fail(practice.path, ADMIN, 2)
    record = attempts.attempts_path(practice.path)
    content = json.loads(record.read_text())
    content["failures"] = content["failures"] * 30  # replay the two real ones 30 times
    record.write_text(json.dumps(content))
    actions = _actions(practice.path)
    assert actions.count((audit_actions.LOGIN_FAILED, ADMIN)) == 0
    assert (audit_actions.FAILED_ATTEMPTS_REFUSED, "system") in actions


def test_one_users_failures_do_not_lock_out_anyone_else(practice: OpenPractice) -> None:
    practice.db.close()
    _fail(practice.path, ADMIN, 7)
    with pytest.raises(UserFacingError, match="Too many wrong passwords in a row for frontdesk"):
        PracticeDatabase.unlock(practice.path, ADMIN, PASSWORD)
    db, outcome = PracticeDatabase.unlock(practice.path, PHYSICIAN, PASSWORD)  # not blocked
    db.close()
    assert outcome.failed_attempts_since_last_login == 7
    # The admin's backoff outlives the physician's log-in.
    assert attempts.seconds_to_wait(practice.path, ADMIN) > 0
    assert attempts.seconds_to_wait(practice.path, PHYSICIAN) == 0


def test_deleting_the_file_is_named_and_does_not_reset_the_backoff(
    practice: OpenPractice,
) -> None:
    practice.db.close()
    # Nine failures: a 32-second backoff, which outlasts two log-ins on a loaded machine.
    _fail(practice.path, ADMIN, 9)
    db, _ = PracticeDatabase.unlock(practice.path, PHYSICIAN, PASSWORD)  # snapshot kept inside
    db.close()
    assert attempts.seconds_to_wait(practice.path, ADMIN) > 0
    attempts.attempts_path(practice.path).unlink()  # the insider removes the record
    actions = _actions(practice.path)
    assert actions.count((audit_actions.FAILED_ATTEMPTS_REFUSED, "system")) == 1
    assert attempts.seconds_to_wait(practice.path, ADMIN) > 0  # restored from the database


def test_failures_are_never_dated_in_the_future(practice: OpenPractice) -> None:
    practice.db.close()
    attempts.record_failure(practice.path, ADMIN, now=datetime(2999, 1, 1, tzinfo=UTC))
    [failure] = attempts.failed_attempts(practice.path)
    assert failure.at <= datetime.now(UTC)


def test_concurrent_failures_neither_crash_nor_lose_counts(practice: OpenPractice) -> None:
    practice.db.close()
    threads_count, each = 8, 6
    errors: list[BaseException] = []

    def fail_many(number: int) -> None:
        try:
            for _ in range(each):
                attempts.record_failure(practice.path, f"user{number % 2}")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=fail_many, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    state = attempts.read_state(practice.path)
    assert state.verdict == "ok"
    assert {name: count for name, (count, _at) in state.users.items()} == {
        "user0": threads_count * each // 2,
        "user1": threads_count * each // 2,
    }
    assert len(state.failures) == threads_count * each
    leftovers = [p.name for p in practice.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_typed_user_name_cannot_forge_lines_in_the_audit(practice: OpenPractice) -> None:
    practice.db.close()
    forged = 'x\nmallory  physician  =HYPERLINK("http://evil")\u202e'
    with pytest.raises(UserFacingError, match="Wrong user name or password"):
        PracticeDatabase.unlock(practice.path, forged, PASSWORD + "x")
    names = [name for action, name in _actions(practice.path)
             if action == audit_actions.LOGIN_FAILED]
    assert names == ['x?mallory  physician  =HYPERLINK("http://evil")?']

"""The write gate: reads pass at once, writes wait for the page check and never follow a
failed one.

File only: the gate waits for SQLCipher's page check of the file.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from ketadesk.core.errors import UserFacingError
from ketadesk.storage.security.engine import create_keyed_engine
from ketadesk.storage.security.integrity_gate import IntegrityGate, is_write
from ketadesk.storage.security.keyslots import KeySlotFile
from tests.conftest import PASSWORD, PHYSICIAN, copy_practice


@pytest.mark.parametrize(
    ("statement", "writes"),
    [
        ("INSERT INTO audit_events VALUES (1)", True),
        ("  update patients SET x = 1", True),
        ("DELETE FROM t", True),
        ("REPLACE INTO t VALUES (1)", True),
        ("CREATE INDEX i ON t (x)", True),
        ("DROP TRIGGER x", True),
        ("ALTER TABLE t ADD x", True),
        ("SELECT * FROM patients", False),
        ("BEGIN IMMEDIATE", False),
        ("COMMIT", False),
        ("PRAGMA cipher_integrity_check", False),
        ("", False),
    ],
)
def test_writes_are_told_from_reads(statement: str, writes: bool) -> None:
    assert is_write(statement) is writes


def test_a_failed_check_lets_reads_through_and_refuses_writes(prepared_practice, tmp_path):
    path = copy_practice(prepared_practice, tmp_path / "db")
    key = KeySlotFile.load(path).unwrap_for_user(PHYSICIAN, PASSWORD)
    # Checking a file of the wrong size fails like damage does, whatever the key.
    broken = tmp_path / "not-a-database.db"
    broken.write_bytes(b"\x01" * 5000)
    gate = IntegrityGate(broken, key, lambda: UserFacingError("damaged (test)"))
    held: list[str] = []
    gate.when_passed(lambda: held.append("login"))
    engine = create_keyed_engine(path, key)
    gate.guard(engine)
    gate.start()
    try:
        with pytest.raises(UserFacingError, match="damaged"):
            gate.wait()
        assert gate.failed and held == []
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM users")).scalar() == 2
        with pytest.raises(UserFacingError, match="damaged"), engine.begin() as connection:
            connection.execute(text("DELETE FROM practice_settings"))
        gate.when_passed(lambda: held.append("later"))
        assert held == []
    finally:
        engine.dispose()


def test_held_writes_run_once_the_check_passes(prepared_practice, tmp_path):
    path = copy_practice(prepared_practice, tmp_path / "db")
    key = KeySlotFile.load(path).unwrap_for_user(PHYSICIAN, PASSWORD)
    gate = IntegrityGate(path, key, lambda: UserFacingError("damaged (test)"))
    held: list[str] = []
    gate.when_passed(lambda: held.append("first"))
    gate.start()
    gate.wait()
    assert gate.passed and held == ["first"]
    gate.when_passed(lambda: held.append("after"))  # already passed: made at once
    assert held == ["first", "after"]


def test_a_write_given_while_the_held_ones_are_made_goes_after_them(prepared_practice, tmp_path):
    """The audit chain keeps the order of actions: a chart opened while the log-in events
    are being written is recorded after them, never between or before."""
    path = copy_practice(prepared_practice, tmp_path / "db")
    key = KeySlotFile.load(path).unwrap_for_user(PHYSICIAN, PASSWORD)
    gate = IntegrityGate(path, key, lambda: UserFacingError("damaged (test)"))
    made: list[str] = []

    def log_in_events() -> None:
        gate.when_passed(lambda: made.append("chart viewed"))  # given meanwhile
        made.append("log-in")

    gate.when_passed(log_in_events)
    gate.start()
    gate.wait()
    assert made == ["log-in", "chart viewed"]

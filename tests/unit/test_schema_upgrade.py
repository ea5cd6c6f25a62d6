"""A database made by an older KetaDesk is backed up, encrypted, before it is upgraded.

File only: the encrypted backup before an upgrade is the file's (a server's upgrade:
tests/e2e/test_server_upgrade.py).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from alembic import command

from ketadesk.models.audit import AuditEvent
from ketadesk.storage.security.database import PracticeDatabase, backups_dir
from ketadesk.storage.security.engine import is_plain_sqlite
from ketadesk.storage.security.migrate import (
    PACKAGED_HEAD,
    alembic_config,
    current_revision,
    head_revision,
)
from tests.conftest import PASSWORD, PHYSICIAN, copy_practice

FIRST_REVISION = "0001"


def test_single_migration_head():
    assert head_revision()


def test_packaged_head_names_the_newest_migration_script():
    assert PACKAGED_HEAD == head_revision(), (
        "a migration was added: set PACKAGED_HEAD in storage/security/migrate.py to "
        f"{head_revision()!r}"
    )


def test_log_in_to_a_current_database_never_imports_alembic(prepared_practice, tmp_path):
    path = copy_practice(prepared_practice, tmp_path / "db")
    script = textwrap.dedent(f"""
        import sys
        from ketadesk.storage.security.database import PracticeDatabase
        db, outcome = PracticeDatabase.unlock({str(path)!r}, {PHYSICIAN!r}, {PASSWORD!r})
        db.close()
        print(sorted(m for m in sys.modules if m.split(".")[0] == "alembic"))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.strip() == "[]"


def test_stored_revision_of_a_database_without_a_schema_is_none(tmp_path):
    from ketadesk.storage.security.engine import create_keyed_engine
    from ketadesk.storage.security.keyslots import new_database_key

    engine = create_keyed_engine(tmp_path / "empty.db", new_database_key())
    try:
        assert current_revision(engine) is None
    finally:
        engine.dispose()


def test_older_database_is_backed_up_then_upgraded(practice):
    with practice.db.engine.begin() as connection:
        command.downgrade(alembic_config(connection), FIRST_REVISION)
    assert current_revision(practice.db.engine) == FIRST_REVISION
    practice.db.close()

    db, _outcome = PracticeDatabase.unlock(practice.path, PHYSICIAN, PASSWORD)
    try:
        assert current_revision(db.engine) == head_revision()
        backups = list(backups_dir(practice.path).glob("before-upgrade-*.db"))
        assert len(backups) == 1
        assert not is_plain_sqlite(backups[0])
        with db.session() as session:
            upgraded = session.query(AuditEvent).filter_by(action="database_upgraded").one()
        assert upgraded.detail == f"schema {FIRST_REVISION} -> {head_revision()}"
    finally:
        db.close()
    # The backup holds the old schema and opens with the same password.
    from ketadesk.storage.security.engine import create_keyed_engine
    from ketadesk.storage.security.keyslots import KeySlotFile

    key = KeySlotFile.load(backups[0]).unwrap_for_user(PHYSICIAN, PASSWORD)
    engine = create_keyed_engine(backups[0], key)
    try:
        assert current_revision(engine) == FIRST_REVISION
    finally:
        engine.dispose()

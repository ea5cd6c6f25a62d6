"""``server import-practice`` on the real test cluster: a demo practice file (patients with
interaction reviews, protocols, check-ins, signatures) moves to an empty server database with
every row, its users as login roles, and its audit chain intact before and after."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from ketadesk.storage.security.grants import PRACTICE_KEY_META
from ketadesk.storage.server.dev_cluster import HOST
from ketadesk.storage.server.server_engine import ServerAddress
from tests.reliability._cli_in_process import CliRun, run_in_process
from tests.server_practice import drop_database, owner_connection

DEMO_PASSWORD = "demo-password-1"
ADMIN_INITIAL = "front desk first password 4"


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo practice of a few synthetic patients (made once for this module)."""
    import subprocess
    import sys

    path = tmp_path_factory.mktemp("demo") / "demo.db"
    made = subprocess.run(
        [sys.executable, "-m", "ketadesk", "--db", str(path), "demo", "--patients", "8",
         "--password-stdin"],
        input=DEMO_PASSWORD + "\n", capture_output=True, text=True, timeout=300, check=False,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen",
             "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"},
    )
    assert made.returncode == 0, made.stderr
    return path


@pytest.fixture
def moved_to(practice_server: Any):
    """A database name not yet on the server (the import makes it); dropped after, with the
    roles the import made."""
    address = ServerAddress(HOST, practice_server.port, f"m_{uuid.uuid4().hex[:12]}")
    yield address
    if _exists(practice_server, address.database):
        drop_database(practice_server, address)


def _exists(cluster: Any, database: str) -> bool:
    with owner_connection(cluster) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        return found.fetchone() is not None


def _file_counts(path: Path) -> dict[str, int]:
    from sqlalchemy import func, select

    from ketadesk.models.base import Base
    from ketadesk.storage.security.database import PracticeDatabase
    from ketadesk.storage.server.practice_import import FILE_ONLY_TABLES

    database, _ = PracticeDatabase.unlock(path, "physician", DEMO_PASSWORD)
    try:
        with database.read_session() as session:
            return {
                table.name: session.execute(select(func.count()).select_from(table)).scalar_one()
                for table in Base.metadata.sorted_tables
                if table.name not in FILE_ONLY_TABLES
            }
    finally:
        database.close()


def _server_counts(cluster: Any, database: str, tables: list[str]) -> dict[str, int]:
    with owner_connection(cluster, database) as connection:
        return {
            t: connection.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables
        }


def _move(monkeypatch, capsys, cluster, path: Path, address: ServerAddress, stdin: str) -> CliRun:
    return run_in_process(
        monkeypatch, capsys, None, "server", "import-practice", str(path), "--db", address.url,
        "--ca", str(cluster.ca_certificate), "--as", "physician", "--password-stdin",
        stdin=stdin,
    )


def test_a_demo_practice_moves_with_every_row_its_users_and_its_audit_chain(
    practice_server, demo_file, moved_to, tmp_path, monkeypatch, capsys
) -> None:
    import shutil

    path = tmp_path / "practice.db"
    for suffix in ("", ".keys.json"):
        shutil.copy2(f"{demo_file}{suffix}", f"{path}{suffix}")
    moved = _move(
        monkeypatch, capsys, practice_server, path, moved_to,
        f"{practice_server.owner_password()}\n{DEMO_PASSWORD}\n{ADMIN_INITIAL}\n",
    )
    assert moved.code == 0, moved.err
    assert f"Moved the practice practice.db to {moved_to.url}" in moved.out
    assert "the same in the file and on the server" in moved.out
    assert "The file's recovery key does not carry over: the server has its own." in moved.out
    assert moved.out.count("RECOVERY KEY (shown only once):") == 1
    # Counted after the import: the file holds the import's log-in (copied) and this count's
    # own log-in; the server holds the import's log-in (copied) and the importing user's first
    # log-in to the server, which first made their signing key there (an event, a wrapped key
    # and a public key of the server's own), and the server's own recovery key (an event and
    # its public key). Every other row equal.
    in_file = _file_counts(path)
    on_server = _server_counts(practice_server, moved_to.database, list(in_file))
    for table in ("patients", "interaction_reviews", "patient_protocols", "checkins",
                  "content_signatures", "users"):
        assert in_file[table] > 0, table  # the demo file holds them, so the move is tested
    assert on_server.pop("audit_events") == in_file.pop("audit_events") + 2
    assert (in_file.pop("server_signing_keys"), on_server.pop("server_signing_keys")) == (0, 1)
    assert (in_file.pop("server_public_keys"), on_server.pop("server_public_keys")) == (0, 2)
    # The practice's own signing key stays behind: every staff role reads practice_meta on a
    # server, so any of them could sign as "system" with it.
    assert on_server.pop("practice_meta") == in_file.pop("practice_meta") - 1
    assert on_server == in_file

    with owner_connection(practice_server, moved_to.database) as connection:
        last = connection.execute(
            "SELECT action, user_name, prev_hash FROM audit_events ORDER BY seq DESC LIMIT 3"
        ).fetchall()
        roles = connection.execute(
            "SELECT r.rolname, r.rolcanlogin, pg_has_role(r.rolname, 'ketadesk_physician', "
            "'MEMBER'), pg_has_role(r.rolname, 'ketadesk_user_manager', 'MEMBER') "
            "FROM pg_roles r WHERE r.rolname IN ('physician', 'admin') ORDER BY 1"
        ).fetchall()
        hash_before = connection.execute(
            "SELECT row_hash FROM audit_events ORDER BY seq DESC OFFSET 1 LIMIT 1"
        ).fetchone()[0]
    assert last[0][:2] == ("recovery_key_set", "physician")
    assert last[1][:2] == ("login", "physician")
    assert last[2][:2] == ("signing_key_granted", "physician")
    assert last[0][2] == hash_before  # the server's chain continues from the file's last event
    with owner_connection(practice_server, moved_to.database) as connection:
        keys = connection.execute(
            "SELECT count(*) FROM practice_meta WHERE key = %s", (PRACTICE_KEY_META,)
        ).fetchone()[0]
    assert keys == 0
    assert roles == [("admin", True, False, False), ("physician", True, True, True)]

    # Both users log in to the server with their passwords; the audit chain is intact there.
    options = ["--db", moved_to.url, "--ca", str(practice_server.ca_certificate)]
    for user, password in (("admin", ADMIN_INITIAL), ("physician", DEMO_PASSWORD)):
        logged_in = run_in_process(
            monkeypatch, capsys, None, "server", "login", *options, "--as", user,
            "--password-stdin", stdin=password + "\n",
        )
        assert logged_in.code == 0, logged_in.err
    checked = run_in_process(
        monkeypatch, capsys, None, "verify-audit", *options, "--as", "physician",
        "--password-stdin", stdin=DEMO_PASSWORD + "\n",
    )
    assert checked.code == 0, checked.err
    listed = run_in_process(
        monkeypatch, capsys, None, "roster", *options, "--as", "admin", "--password-stdin",
        "--json", stdin=ADMIN_INITIAL + "\n",
    )
    assert listed.code == 0, listed.err
    assert listed.out.count('"mrn"') == in_file["patients"]

    again = _move(
        monkeypatch, capsys, practice_server, path, moved_to,
        f"{practice_server.owner_password()}\n{DEMO_PASSWORD}\n{ADMIN_INITIAL}\n",
    )
    assert again.code == 1
    assert f"The database {moved_to.database} on {HOST} is not empty" in again.err


def test_a_refused_import_leaves_the_server_database_empty_and_makes_no_role(
    practice_server, demo_file, moved_to, tmp_path, monkeypatch, capsys
) -> None:
    import shutil

    path = tmp_path / "practice.db"
    for suffix in ("", ".keys.json"):
        shutil.copy2(f"{demo_file}{suffix}", f"{path}{suffix}")
    weak = _move(
        monkeypatch, capsys, practice_server, path, moved_to,
        f"{practice_server.owner_password()}\n{DEMO_PASSWORD}\nadmin\n",
    )
    assert weak.code == 1
    assert "Traceback" not in weak.err
    assert "password for admin" in weak.err.lower()
    assert not _exists(practice_server, moved_to.database)  # refused before anything was made
    admin_only = run_in_process(
        monkeypatch, capsys, None, "server", "import-practice", str(path), "--db", moved_to.url,
        "--ca", str(practice_server.ca_certificate), "--as", "admin", "--password-stdin",
        stdin=f"{practice_server.owner_password()}\n{DEMO_PASSWORD}\n{ADMIN_INITIAL}\n",
    )
    assert admin_only.code == 3
    assert "manage users may move the practice to a server" in admin_only.err
    assert not _exists(practice_server, moved_to.database)
    with owner_connection(practice_server) as admin:
        assert admin.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname IN ('physician', 'admin')"
        ).fetchone() == (0,)


def test_a_server_that_already_has_a_users_role_is_refused_and_left_empty(
    practice_server, demo_file, moved_to, monkeypatch, capsys
) -> None:
    with owner_connection(practice_server) as admin:
        admin.execute('CREATE ROLE "admin" NOLOGIN')
    try:
        taken = _move(
            monkeypatch, capsys, practice_server, demo_file, moved_to,
            f"{practice_server.owner_password()}\n{DEMO_PASSWORD}\n{ADMIN_INITIAL}\n",
        )
        assert taken.code == 1
        assert taken.err == (
            "ketadesk: The server already has database roles named admin; a practice's users "
            "become roles of their own names, so move this practice to a server without them. "
            "Nothing was changed.\n"
        )
        with owner_connection(practice_server, moved_to.database) as connection:
            assert connection.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            ).fetchone() == (0,)
        with owner_connection(practice_server) as admin:
            assert admin.execute(
                "SELECT count(*) FROM pg_roles WHERE rolname = 'physician'"
            ).fetchone() == (0,)
    finally:
        with owner_connection(practice_server) as admin:
            admin.execute('DROP ROLE IF EXISTS "admin"')

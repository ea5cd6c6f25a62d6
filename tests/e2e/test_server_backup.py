"""``backup`` and ``restore`` on a practice server (the real test cluster, in process): the
dump is sealed before it touches the disk, a restore goes into an empty database only, and a
wrong passphrase, a backup cut short or altered change nothing."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from ketadesk.storage.server.dev_cluster import HOST
from ketadesk.storage.server.server_engine import ServerAddress
from tests.conftest import PASSWORD
from tests.e2e.test_server_commands import HEADER, ROWS
from tests.reliability._cli_in_process import CliRun, run_in_process
from tests.server_practice import owner_connection

PASSPHRASE = "a long backup passphrase 7"
ON_A_SERVER = pytest.mark.parametrize("practice_on", ["server"], indirect=True)


def _cli(monkeypatch: Any, capsys: Any, _practice: Any, *args: str, stdin: str) -> CliRun:
    return run_in_process(monkeypatch, capsys, None, *args, stdin=stdin)


def table_counts(cluster: Any, database: str) -> dict[str, int]:
    with owner_connection(cluster, database) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            ).fetchall()
        ]
        return {
            table: connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            for table in tables
        }


@pytest.fixture
def empty_target(practice_server: Any):
    """The address of a database that does not exist yet (restore makes it), dropped after."""
    address = ServerAddress(HOST, practice_server.port, f"r_{uuid.uuid4().hex[:12]}")
    yield address
    with owner_connection(practice_server) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{address.database}" WITH (FORCE)')


def _backup(monkeypatch, capsys, practice_on, out: Path, passphrase: str = PASSPHRASE) -> CliRun:
    physician = practice_on.physician.user_name
    return _cli(
        monkeypatch, capsys, practice_on, "backup", *practice_on.db_option, "--out", str(out),
        "--as", physician, "--password-stdin", stdin=f"{PASSWORD}\n{passphrase}\n",
    )


def _restore(
    monkeypatch, capsys, practice_on, cluster, source: Path, target: ServerAddress,
    passphrase: str = PASSPHRASE,
) -> CliRun:
    physician = practice_on.physician.user_name
    return _cli(
        monkeypatch, capsys, practice_on, "restore", str(source), "--db", target.url,
        "--ca", str(practice_on.ca), "--as", physician, "--password-stdin",
        stdin=f"{cluster.owner_password()}\n{passphrase}\n{PASSWORD}\n",
    )


@ON_A_SERVER
def test_backup_is_sealed_and_restores_every_row_into_an_empty_database(
    practice_on, practice_server, empty_target, tmp_path, monkeypatch, capsys
) -> None:
    csv = tmp_path / "roster.csv"
    csv.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    imported = _cli(
        monkeypatch, capsys, practice_on, "import-patients", str(csv), *practice_on.db_option,
        "--as", practice_on.admin.user_name, "--password-stdin", stdin=PASSWORD + "\n",
    )
    assert imported.code == 0, imported.err
    out = tmp_path / "backups" / "practice.kdbackup"
    made = _backup(monkeypatch, capsys, practice_on, out)
    assert made.code == 0, made.err
    assert f"Encrypted backup of {practice_on.url} written to {out}" in made.out
    sealed = out.read_bytes()
    assert sealed.startswith(b"KETADESK-SERVER-BACKUP\n")
    # Neither pg_dump's own format marker nor any name from the roster is readable in it.
    for clear in (b"PGDMP", b"Quillon", "Zoë".encode(), b"Rowan Quill", b"CREATE TABLE"):
        assert clear not in sealed
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no plaintext left beside it
    source_counts = table_counts(practice_server, practice_on.url.rsplit("/", 1)[1])

    restored = _restore(monkeypatch, capsys, practice_on, practice_server, out, empty_target)
    assert restored.code == 0, restored.err
    assert f"into {empty_target.url}." in restored.out
    assert "intact" in restored.out.lower()
    counts = table_counts(practice_server, empty_target.database)
    restored_counts = dict(counts)
    # The restore's own log-in and restore events continue the chain; every other row is equal
    # but users' wrapped signing keys, which a backup leaves out (each user sees only their own):
    # the restorer's log-in makes a new key (one more event, one more public key listed).
    assert counts.pop("audit_events") == source_counts.pop("audit_events") + 3
    assert source_counts.pop("server_signing_keys") >= 1
    assert counts.pop("server_signing_keys") == 1
    assert counts.pop("server_public_keys") == source_counts.pop("server_public_keys") + 1
    assert counts == source_counts
    assert source_counts["patients"] == 2

    # The restored practice keeps the server's rules: the admin still cannot touch the trail.
    from psycopg import errors

    from ketadesk.storage.server.practice_roles import connect

    with connect(
        host=HOST, port=empty_target.port, database=empty_target.database,
        user=practice_on.admin.user_name, password=PASSWORD,
        ca_certificate=practice_on.ca, autocommit=True,
    ) as admin:
        with pytest.raises(errors.InsufficientPrivilege):
            admin.execute("DELETE FROM audit_events")
        with pytest.raises(errors.InsufficientPrivilege):
            admin.execute("UPDATE interaction_reviews SET status = 'signed'")
        assert admin.execute("SELECT count(*) FROM patients").fetchone() == (2,)

    again = _restore(monkeypatch, capsys, practice_on, practice_server, out, empty_target)
    assert again.code == 1
    assert f"The database {empty_target.database} on {HOST} is not empty" in again.err
    assert "Nothing was changed." in again.err
    assert table_counts(practice_server, empty_target.database) == restored_counts


def _no_tables(cluster: Any, database: str) -> bool:
    with owner_connection(cluster, database) as connection:
        return connection.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone() == (0,)


@ON_A_SERVER
def test_a_wrong_passphrase_a_cut_or_altered_backup_change_nothing(
    practice_on, practice_server, empty_target, tmp_path, monkeypatch, capsys
) -> None:
    out = tmp_path / "practice.kdbackup"
    assert _backup(monkeypatch, capsys, practice_on, out).code == 0
    sealed = out.read_bytes()

    wrong = _restore(monkeypatch, capsys, practice_on, practice_server, out, empty_target,
                     passphrase="not the passphrase at all")
    assert wrong.code == 1
    assert "That passphrase does not open this backup. Nothing was changed" in wrong.err
    assert _no_tables(practice_server, empty_target.database)

    cut = tmp_path / "cut.kdbackup"
    cut.write_bytes(sealed[: len(sealed) - 100])
    truncated = _restore(monkeypatch, capsys, practice_on, practice_server, cut, empty_target)
    assert truncated.code == 1
    assert "The backup file is incomplete" in truncated.err
    assert _no_tables(practice_server, empty_target.database)

    altered_bytes = bytearray(sealed)
    altered_bytes[len(sealed) // 2] ^= 0x01
    altered = tmp_path / "altered.kdbackup"
    altered.write_bytes(bytes(altered_bytes))
    changed = _restore(monkeypatch, capsys, practice_on, practice_server, altered, empty_target)
    assert changed.code == 1
    assert "The backup file has been altered or damaged" in changed.err
    assert _no_tables(practice_server, empty_target.database)
    stranger = _cli(
        monkeypatch, capsys, practice_on, "restore", str(out), "--db", empty_target.url,
        "--ca", str(practice_on.ca), "--as", "nobody.here", "--password-stdin",
        stdin=f"{practice_server.owner_password()}\n{PASSPHRASE}\n{PASSWORD}\n",
    )
    assert stranger.code == 1
    # No role of that name here: the backup is opened, and it has no such user manager; the
    # database is left as empty as it was, and no role is made.
    assert "nobody.here is not an active user of the practice in the backup" in stranger.err
    assert _no_tables(practice_server, empty_target.database)
    with owner_connection(practice_server) as owner:
        assert owner.execute("SELECT 1 FROM pg_roles WHERE rolname = 'nobody.here'"
                             ).fetchone() is None
    physician = practice_on.physician.user_name
    mistyped = _cli(
        monkeypatch, capsys, practice_on, "restore", str(out), "--db", empty_target.url,
        "--ca", str(practice_on.ca), "--as", physician, "--password-stdin",
        stdin=f"{practice_server.owner_password()}\n{PASSPHRASE}\nnot my password\n",
    )
    assert mistyped.code == 1
    assert f"The practice server refused the password for {physician}" in mistyped.err
    assert "Nothing was restored." in mistyped.err
    assert _no_tables(practice_server, empty_target.database)
    admin = _cli(
        monkeypatch, capsys, practice_on, "restore", str(out), "--db", empty_target.url,
        "--ca", str(practice_on.ca), "--as", practice_on.admin.user_name, "--password-stdin",
        stdin=f"{practice_server.owner_password()}\n{PASSPHRASE}\n{PASSWORD}\n",
    )
    assert admin.code == 1
    assert "does not manage users on this server" in admin.err
    assert _no_tables(practice_server, empty_target.database)
    for run in (wrong, truncated, changed, stranger, mistyped, admin):
        assert "Traceback" not in run.err


@ON_A_SERVER
def test_only_a_user_who_manages_users_backs_up(
    practice_on, tmp_path, monkeypatch, capsys
) -> None:
    out = tmp_path / "practice.kdbackup"
    refused = _cli(
        monkeypatch, capsys, practice_on, "backup", *practice_on.db_option, "--out", str(out),
        "--as", practice_on.admin.user_name, "--password-stdin",
        stdin=f"{PASSWORD}\n{PASSPHRASE}\n",
    )
    assert refused.code == 3  # refused for want of a permission
    assert refused.err == "ketadesk: Only users who manage users may back up the practice server.\n"
    assert not out.exists()


def test_restoring_on_a_server_without_the_users_roles_makes_them(
    practice_server, empty_target, tmp_path, monkeypatch, capsys
) -> None:
    """The disaster case: the backup's users have no login roles on the server it goes to.
    The restore makes them: the restorer's (a user manager of the backup) with the password
    given, the others' with none until a user manager sets one."""
    from ketadesk.core.errors import UserFacingError
    from ketadesk.core.permissions import Role
    from ketadesk.storage.server.server_practice import ServerPractice
    from tests.server_practice import drop_database, new_database

    server_database = new_database(practice_server)
    suffix = uuid.uuid4().hex[:6]
    physician, admin, gone = f"drlost{suffix}", f"desklost{suffix}", f"gone{suffix}"
    ca = practice_server.ca_certificate
    ServerPractice.create(
        server_database, ca, owner_password=practice_server.owner_password(),
        user_name=physician, full_name="Dr Lost Server", password=PASSWORD,
    )
    practice = ServerPractice.log_in(server_database, ca, physician, PASSWORD)
    try:
        practice.add_user(admin, "Desk Lost", Role.ADMIN, PASSWORD)
        practice.add_user(gone, "Gone Away", Role.ADMIN, PASSWORD)
        practice.remove_user(gone)
    finally:
        practice.close()
    out = tmp_path / "practice.kdbackup"
    made = run_in_process(
        monkeypatch, capsys, None, "backup", "--db", server_database.url, "--ca", str(ca),
        "--out", str(out), "--as", physician, "--password-stdin",
        stdin=f"{PASSWORD}\n{PASSPHRASE}\n",
    )
    assert made.code == 0, made.err
    drop_database(practice_server, server_database)  # the server is lost, and its roles

    def restore(as_user: str, password: str) -> CliRun:
        return run_in_process(
            monkeypatch, capsys, None, "restore", str(out), "--db", empty_target.url,
            "--ca", str(ca), "--as", as_user, "--password-stdin",
            stdin=f"{practice_server.owner_password()}\n{PASSPHRASE}\n{password}\n",
        )

    def roles() -> list[tuple[str, bool, bool]]:
        with owner_connection(practice_server) as owner:
            return [tuple(r) for r in owner.execute(
                "SELECT rolname, rolcanlogin, rolpassword IS NOT NULL FROM pg_authid "
                "WHERE rolname = ANY(%s) ORDER BY rolname", ([physician, admin, gone],)
            ).fetchall()]

    try:
        refused = restore(admin, "a new admin password 1")
        assert refused.code == 1
        assert f"{admin} does not manage users in the practice in the backup" in refused.err
        assert "nothing was restored from practice.kdbackup" in refused.err
        assert _no_tables(practice_server, empty_target.database) and roles() == []

        restored = restore(physician, "a new server password 2")
        assert restored.code == 0, restored.err
        assert "audit chain intact" in restored.out
        assert f"Made the login role {physician} on this server" in restored.out
        assert f"Made login roles with no password yet for: {admin}." in restored.out
        assert f"Removed users, with roles that cannot log in: {gone}" in restored.out
        assert "have no login role" not in restored.out
        assert roles() == sorted([(physician, True, True), (admin, True, False),
                                  (gone, False, False)])
        with pytest.raises(UserFacingError, match="Wrong user name or password"):
            ServerPractice.log_in(empty_target, ca, admin, PASSWORD)
        manager = ServerPractice.log_in(empty_target, ca, physician, "a new server password 2")
        try:
            assert manager.actor.can_manage_users
            manager.reset_password(admin, "desk reset password 3")
            verdict = manager.verify_audit_trail()
            assert verdict.is_intact, verdict.describe()
        finally:
            manager.close()
        desk = ServerPractice.log_in(empty_target, ca, admin, "desk reset password 3")
        assert desk.actor.role is Role.ADMIN and not desk.actor.can_manage_users
        desk.close()
    finally:
        with owner_connection(practice_server) as owner:
            owner.execute(f'DROP DATABASE IF EXISTS "{empty_target.database}" WITH (FORCE)')
            for name in (physician, admin, gone):
                owner.execute(f'DROP ROLE IF EXISTS "{name}"')

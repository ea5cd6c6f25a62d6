"""``server upgrade`` on the real test cluster: it runs the migrations a practice lacks and
applies the grants and triggers again; run twice it changes nothing, and afterwards the
server still refuses an admin's forbidden writes."""

from __future__ import annotations

from typing import Any

import pytest
from psycopg import errors

from ketadesk.storage.security.migrate import PACKAGED_HEAD, alembic_config, current_revision
from ketadesk.storage.server.dev_cluster import HOST
from ketadesk.storage.server.practice_roles import connect
from ketadesk.storage.server.server_engine import parse_server_url
from tests.conftest import PASSWORD
from tests.reliability._cli_in_process import CliRun, run_in_process
from tests.server_practice import owner_connection, owner_engine

ON_A_SERVER = pytest.mark.parametrize("practice_on", ["server"], indirect=True)

# What the server's rules are made of: grants to the group roles, triggers, KetaDesk's own
# functions (their whole text) and indexes.
RULES = {
    "grants": "SELECT grantee, table_name, privilege_type FROM information_schema."
    "role_table_grants WHERE grantee LIKE 'ketadesk%' ORDER BY 1, 2, 3",
    "triggers": "SELECT tgrelid::regclass::text, tgname, tgenabled FROM pg_trigger "
    "WHERE NOT tgisinternal ORDER BY 1, 2",
    "functions": "SELECT proname, pg_get_functiondef(oid), proacl::text FROM pg_proc "
    "WHERE proname LIKE 'ketadesk%' ORDER BY 1",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
    "ORDER BY 1",
}


def no_key_yet(url: str) -> str:
    """What upgrade adds for a practice without a recovery key (a copy of the template is
    one: its recovery role is named after the template's database)."""
    return (
        " This practice has no recovery key yet: a user who manages users makes one with "
        f"'server recovery-key --db {url} --as NAME' and keeps it offline."
    )


def server_rules(cluster: Any, database: str) -> dict[str, list[tuple[Any, ...]]]:
    with owner_connection(cluster, database) as connection:
        return {name: connection.execute(query).fetchall() for name, query in RULES.items()}


def upgrade(monkeypatch: Any, capsys: Any, practice: Any, cluster: Any) -> CliRun:
    return run_in_process(
        monkeypatch, capsys, None, "server", "upgrade", *practice.db_option,
        "--password-stdin", stdin=cluster.owner_password() + "\n",
    )


def admin_is_refused_every_forbidden_write(practice: Any) -> None:
    address = parse_server_url(practice.url)
    with connect(
        host=HOST, port=address.port, database=address.database,
        user=practice.admin.user_name, password=PASSWORD,
        ca_certificate=practice.ca, autocommit=True,
    ) as admin:
        for statement in (
            "DELETE FROM audit_events",
            "UPDATE audit_events SET detail = 'x'",
            "UPDATE users SET role = 'physician'",
            "UPDATE interaction_reviews SET status = 'signed'",
            "DELETE FROM patient_protocols",
            "INSERT INTO practice_meta (key, value) VALUES ('x', 'y')",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                admin.execute(statement)
        with pytest.raises(errors.InsufficientPrivilege):
            admin.execute("SELECT ketadesk_set_user_role(session_user, 'physician', true)")


@ON_A_SERVER
def test_upgrade_is_idempotent_and_the_grants_still_refuse_an_admin(
    practice_on, practice_server, monkeypatch, capsys
) -> None:
    database = parse_server_url(practice_on.url).database
    practice_on.db.close()  # the fixture's own connections: the upgrade does not need them
    before = server_rules(practice_server, database)
    first = upgrade(monkeypatch, capsys, practice_on, practice_server)
    assert first.code == 0, first.err
    assert first.out.strip() == (
        f"The practice at {practice_on.url} was already at schema {PACKAGED_HEAD}; its "
        "grants and triggers were applied again." + no_key_yet(practice_on.url)
    )
    second = upgrade(monkeypatch, capsys, practice_on, practice_server)
    assert second.code == 0, second.err
    assert server_rules(practice_server, database) == before
    admin_is_refused_every_forbidden_write(practice_on)


@ON_A_SERVER
def test_upgrade_brings_an_older_practice_and_its_lost_rules_back(
    practice_on, practice_server, monkeypatch, capsys
) -> None:
    from alembic import command

    address = parse_server_url(practice_on.url)
    database = address.database
    practice_on.db.close()
    before = server_rules(practice_server, database)
    engine = owner_engine(practice_server, address)
    try:
        with engine.begin() as connection:  # a practice one release behind, rules lost
            command.downgrade(alembic_config(connection), "-1")
            connection.exec_driver_sql(
                "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ketadesk_staff"
            )
            connection.exec_driver_sql(
                "DROP TRIGGER content_signatures_frozen ON content_signatures"
            )
        older = current_revision(engine)
    finally:
        engine.dispose()
    assert older != PACKAGED_HEAD

    done = upgrade(monkeypatch, capsys, practice_on, practice_server)
    assert done.code == 0, done.err
    assert done.out.strip() == (
        f"Upgraded the practice at {practice_on.url} from schema {older} to {PACKAGED_HEAD}, "
        "and applied its grants and triggers." + no_key_yet(practice_on.url)
    )
    assert server_rules(practice_server, database) == before
    admin_is_refused_every_forbidden_write(practice_on)
    # The users log in and read again as before.
    listed = run_in_process(
        monkeypatch, capsys, None, "roster", *practice_on.db_option,
        "--as", practice_on.admin.user_name, "--password-stdin", stdin=PASSWORD + "\n",
    )
    assert listed.code == 0, listed.err


def test_upgrade_refuses_a_database_without_a_practice_and_a_wrong_owner_password(
    practice_server, server_database, monkeypatch, capsys
) -> None:
    options = ["--db", server_database.url, "--ca", str(practice_server.ca_certificate)]
    empty = run_in_process(
        monkeypatch, capsys, None, "server", "upgrade", *options, "--password-stdin",
        stdin=practice_server.owner_password() + "\n",
    )
    assert empty.code == 1
    assert "holds no KetaDesk practice yet" in empty.err
    wrong = run_in_process(
        monkeypatch, capsys, None, "server", "upgrade", *options, "--password-stdin",
        stdin="not the owner password\n",
    )
    assert wrong.code == 1
    assert "refused the password for ketadesk_owner" in wrong.err


def test_server_init_makes_a_missing_database_as_on_a_new_server(
    practice_server, monkeypatch, capsys
) -> None:
    import uuid

    from ketadesk.storage.server.server_engine import ServerAddress
    from tests.server_practice import drop_database

    address = ServerAddress(HOST, practice_server.port, f"n_{uuid.uuid4().hex[:12]}")
    user = f"drnew{uuid.uuid4().hex[:6]}"
    options = ["--db", address.url, "--ca", str(practice_server.ca_certificate)]
    try:
        made = run_in_process(
            monkeypatch, capsys, None, "server", "init", *options, "--user", user,
            "--full-name", "Dr New Server", "--password-stdin",
            stdin=f"{practice_server.owner_password()}\n{PASSWORD}\n",
        )
        assert made.code == 0, made.err
        assert f"Created the practice at {address.url} with physician {user}." in made.out
        upgraded = run_in_process(
            monkeypatch, capsys, None, "server", "upgrade", *options, "--password-stdin",
            stdin=practice_server.owner_password() + "\n",
        )
        assert upgraded.code == 0, upgraded.err
        assert "already at schema" in upgraded.out
    finally:
        drop_database(practice_server, address)


@ON_A_SERVER
def test_upgrade_invents_no_recovery_key_and_keeps_the_recovery_role_to_its_function(
    practice_on, practice_server, monkeypatch, capsys
) -> None:
    from ketadesk.storage.server.recovery_role import recovery_role_name
    from tests.e2e.test_server_init_cli import printed_recovery_key

    database = parse_server_url(practice_on.url).database
    role = recovery_role_name(database)
    practice_on.db.close()
    try:
        without = upgrade(monkeypatch, capsys, practice_on, practice_server)
        assert without.code == 0, without.err
        assert without.out.strip().endswith(no_key_yet(practice_on.url))
        with owner_connection(practice_server) as owner:
            assert owner.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)
            ).fetchone() is None

        made = run_in_process(
            monkeypatch, capsys, None, "server", "recovery-key", *practice_on.db_option,
            "--as", practice_on.physician.user_name, "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        assert made.code == 0, made.err
        assert made.out.startswith("Made a new recovery key; the earlier one no longer works.")
        printed_recovery_key(made.out)

        # Someone gives the recovery role more than its function; upgrade takes it back.
        with owner_connection(practice_server, database) as owner:
            owner.execute(f'GRANT SELECT ON patients, audit_events TO "{role}"')
            owner.execute(f'GRANT ketadesk_staff TO "{role}"')
        again = upgrade(monkeypatch, capsys, practice_on, practice_server)
        assert again.code == 0, again.err
        assert "no recovery key" not in again.out
        with owner_connection(practice_server, database) as owner:
            assert owner.execute(
                "SELECT has_table_privilege(%s, 'patients', 'SELECT'), "
                "has_table_privilege(%s, 'audit_events', 'SELECT')", (role, role)
            ).fetchone() == (False, False)
            assert owner.execute(
                "SELECT string_agg(roleid::regrole::text, ',') FROM pg_auth_members "
                "WHERE member = %s::regrole", (role,)
            ).fetchone() == ("ketadesk_recovery",)
    finally:
        with owner_connection(practice_server, database) as owner:
            if owner.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                owner.execute(f'DROP OWNED BY "{role}"')  # its grants here, CONNECT too
                owner.execute(f'DROP ROLE "{role}"')

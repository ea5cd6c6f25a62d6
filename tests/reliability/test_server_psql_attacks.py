"""An admin (and a physician) at ``psql`` with their own password tries every forbidden write.

The attempts are enumerated, never hand-picked: every table named in ``practice_grants``
(which ``tests/unit/test_server_practice.py`` checks against the models, so a new table is
covered the day it is added) times every kind of write the role was not granted (INSERT,
UPDATE, DELETE, TRUNCATE) and every change of the table itself (ALTER, DROP, a trigger of
one's own); every sequence and function found on the server; every group role and role
attribute; the server's own files, programs and settings. Each must fail with SQLSTATE 42501
(insufficient privilege), and at the end no table, role or membership has changed. What a
role may write only in some rows or columns (the clinical columns, signed records) is tried
in ``tests/unit/test_server_clinical_columns.py`` and ``test_server_signed_records.py``.
"""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from ketadesk.core.errors import UserFacingError
from ketadesk.models import Base
from ketadesk.storage.server.practice_grants import (
    ALL_CLASSIFIED_TABLES,
    APPEND_ONLY_TABLES,
    PHYSICIAN_WRITABLE_TABLES,
    STAFF_WRITABLE_TABLES,
)
from ketadesk.storage.server.practice_roles import GROUP_ROLES, OWNER_ROLE
from tests.both_back_ends import SERVER_ADMIN, SERVER_PHYSICIAN, copy_of, drop_copy
from tests.conftest import PASSWORD
from tests.server_practice import owner_connection, psql_connection

ROWS = ("INSERT", "UPDATE", "DELETE")
TABLE_WRITES = (*ROWS, "TRUNCATE", "TRIGGER")
ROLES = {"admin": SERVER_ADMIN, "physician": SERVER_PHYSICIAN}
SERVER_ROLES = (
    OWNER_ROLE,
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_signal_backend",
)
# SECURITY DEFINER functions an admin may call: each runs with the owner's rights, so one is
# added here only after checking it refuses what the admin's grants refuse.
# Checked: storing a signing key writes only the caller's own row in the caller's name and
# refuses another user's public key (test_server_signing_keys); setting a password is the
# caller's own unless they manage users (an admin setting another's: test_server_signing_keys);
# credentials are the caller's own unless they manage users, and only with the audit event in
# the same transaction (below, and test_server_credentials).
ADMIN_CALLABLE_DEFINERS: tuple[str, ...] = (
    "ketadesk_set_password(text,text)",
    "ketadesk_set_user_credentials(text,text,text,text)",
    "ketadesk_store_signing_key(text,text,text,text)",
)
ROLE_ATTRIBUTES = ("SUPERUSER", "CREATEROLE", "CREATEDB", "REPLICATION", "BYPASSRLS")


def granted(role: str, table: str) -> set[str]:
    """What ``practice_grants`` lets ``role`` ("admin" or "physician") write in ``table``."""
    if table in APPEND_ONLY_TABLES:
        return {"INSERT"}
    if table in STAFF_WRITABLE_TABLES:
        return set(ROWS)
    if table in PHYSICIAN_WRITABLE_TABLES and role == "physician":
        return set(ROWS)
    return set()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _a_column(table: str) -> str:
    if table == "alembic_version":
        return "version_num"
    return next(iter(Base.metadata.tables[table].columns)).name


def forbidden_statements(role: str, table: str) -> list[str]:
    """Every write of ``table`` that ``role`` was not granted, one statement each."""
    name, column = _quoted(table), _quoted(_a_column(table))
    attempts = {
        "INSERT": f"INSERT INTO {name} DEFAULT VALUES",
        "UPDATE": f"UPDATE {name} SET {column} = {column}",
        "DELETE": f"DELETE FROM {name}",
        "TRUNCATE": f"TRUNCATE {name} CASCADE",
        "TRIGGER": f"CREATE TRIGGER sneaky BEFORE INSERT ON {name} FOR EACH ROW "
        "EXECUTE FUNCTION suppress_redundant_updates_trigger()",
    }
    statements = [sql for kind, sql in attempts.items() if kind not in granted(role, table)]
    return [
        *statements,
        f"ALTER TABLE {name} ADD COLUMN sneaky integer",
        f"ALTER TABLE {name} DISABLE TRIGGER ALL",
        f"ALTER TABLE {name} OWNER TO {_quoted(ROLES[role])}",
        f"DROP TABLE {name} CASCADE",
        f"COMMENT ON TABLE {name} IS 'mine'",
    ]


@pytest.fixture(scope="module")
def attacked(practice_server, server_template):
    """A copy of the template practice and, per table, its row count before the attacks."""
    address = copy_of(practice_server, server_template[0])
    try:
        with owner_connection(practice_server, address.database) as owner:
            before = _snapshot(owner)
        yield practice_server, address, before
        with owner_connection(practice_server, address.database) as owner:
            assert _snapshot(owner) == before, "an attack changed something"
    finally:
        drop_copy(practice_server, address)


def _snapshot(owner: psycopg.Connection) -> dict[str, object]:
    tables = [r[0] for r in owner.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
    )]
    state: dict[str, object] = {
        t: owner.execute(f"SELECT count(*), md5(string_agg(x::text, ',' ORDER BY x::text)) "
                         f"FROM {_quoted(t)} x").fetchone()
        for t in tables
    }
    state["roles"] = owner.execute(
        "SELECT string_agg(rolname || rolsuper || rolcreaterole || rolcreatedb || rolcanlogin"
        " || rolbypassrls || coalesce(rolpassword, ''), ',' ORDER BY rolname) FROM pg_authid"
    ).fetchone()
    state["members"] = owner.execute(
        "SELECT string_agg(roleid::regrole || '>' || member::regrole, ',' ORDER BY 1) "
        "FROM pg_auth_members"
    ).fetchone()
    state["functions"] = owner.execute(
        "SELECT string_agg(oid::regprocedure::text || md5(prosrc) || proowner::regrole, ','"
        " ORDER BY 1) FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
    ).fetchone()
    return state


def _raw(attacked, role: str) -> psycopg.Connection:
    """A raw connection with the user's own password, as ``psql`` would open one."""
    cluster, address, _ = attacked
    return psql_connection(cluster, address, ROLES[role], PASSWORD)


def _not_refused(connection: psycopg.Connection, statements: list[str]) -> list[str]:
    """The statements the server did not refuse for lack of privilege (should be none)."""
    slipped = []
    for statement in statements:
        try:
            connection.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            continue
        except psycopg.Error as error:
            slipped.append(f"{statement}  -> {type(error).__name__}: {error}")
        else:
            slipped.append(f"{statement}  -> ACCEPTED")
    return slipped


@pytest.mark.parametrize("role", sorted(ROLES))
def test_the_grants_are_exactly_the_lists(attacked, role):
    """What the server grants each role on each table is what ``practice_grants`` says."""
    with _raw(attacked, role) as raw:
        live = {r[0] for r in raw.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )}
        assert live == set(ALL_CLASSIFIED_TABLES)
        for table in ALL_CLASSIFIED_TABLES:
            has = {
                kind
                for kind in TABLE_WRITES
                if raw.execute(
                    "SELECT has_table_privilege(session_user, %s, %s)", (table, kind)
                ).fetchone()[0]
            }
            assert has == granted(role, table), table


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("table", ALL_CLASSIFIED_TABLES)
def test_every_write_not_granted_is_refused(attacked, role, table):
    with _raw(attacked, role) as raw:
        assert _not_refused(raw, forbidden_statements(role, table)) == []
        # Granting on without the grant option is only a warning; it must grant nothing.
        acl = "SELECT relacl::text FROM pg_class WHERE oid = %s::regclass"
        before = raw.execute(acl, (_quoted(table),)).fetchone()
        raw.execute(f"GRANT ALL ON {_quoted(table)} TO PUBLIC")
        assert raw.execute(acl, (_quoted(table),)).fetchone() == before


def _practice_functions(raw):
    """The practice's own functions (not triggers), as the connected role sees them: name,
    signature, NULL arguments to call it with, may it execute it, is it SECURITY DEFINER."""
    return raw.execute(
        "SELECT p.oid::regproc::text, p.oid::regprocedure::text, "
        "  coalesce((SELECT string_agg('NULL::' || format_type(t, NULL), ', ') "
        "            FROM unnest(p.proargtypes) t), ''), "
        "  has_function_privilege(session_user, p.oid, 'EXECUTE'), p.prosecdef "
        "FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace "
        "AND p.proowner = %s::regrole AND p.prokind = 'f' "
        "AND p.prorettype <> 'trigger'::regtype",
        (OWNER_ROLE,),
    ).fetchall()


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_sequence_function_and_the_schema_are_refused(attacked, role):
    with _raw(attacked, role) as raw:
        sequences = [r[0] for r in raw.execute(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
        )]
        assert sequences, "the practice has sequences (serial ids)"
        functions = _practice_functions(raw)
        callable_definer = [sig for _, sig, _, may, definer in functions if may and definer]
        # SECURITY DEFINER functions open to everyone would be a way around every grant.
        with owner_connection(attacked[0], attacked[1].database) as owner:
            public_definer = owner.execute(
                "SELECT p.oid::regprocedure::text FROM pg_proc p, aclexplode(coalesce("
                "p.proacl, acldefault('f', p.proowner))) a WHERE p.prosecdef AND a.grantee = 0"
                " AND p.pronamespace = 'public'::regnamespace"
            ).fetchall()
        assert public_definer == []
        statements = [
            *(f"SELECT setval('{seq}', 1)" for seq in sequences),
            *(f"ALTER SEQUENCE {_quoted(seq)} RESTART" for seq in sequences),
            *(f"SELECT {name}({args})" for name, _sig, args, may, _ in functions if not may),
            *(f"DROP FUNCTION {sig}" for _, sig, _, _, _ in functions),
            *(f"ALTER FUNCTION {sig} OWNER TO {_quoted(ROLES[role])}"
              for _, sig, _, _, _ in functions),
            "CREATE TABLE shadow_audit (seq integer)",
            "CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "CREATE SCHEMA sneaky",
            "CREATE EXTENSION IF NOT EXISTS pgcrypto",
        ]
        assert _not_refused(raw, statements) == []
    if role == "admin":
        assert sorted(callable_definer) == sorted(ADMIN_CALLABLE_DEFINERS)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_no_role_no_attribute_and_nothing_of_the_servers_own(attacked, role):
    other_role = "physician" if role == "admin" else "admin"
    me, other_name = _quoted(ROLES[role]), ROLES[other_role]
    other = _quoted(other_name)
    statements = [
        *(f"GRANT {group} TO {me}" for group in (*GROUP_ROLES, *SERVER_ROLES)),
        *(f"ALTER ROLE {me} {attribute}" for attribute in ROLE_ATTRIBUTES),
        f"ALTER ROLE {other} PASSWORD 'taken over'",
        f"ALTER ROLE {other} NOLOGIN",
        "CREATE ROLE sneaky LOGIN PASSWORD 'sneaky password'",
        f"REVOKE ketadesk_physician FROM {other}",
        "ALTER SYSTEM SET ssl = off",
        "SELECT pg_read_file('pg_hba.conf')",
        "COPY (SELECT 1) TO PROGRAM 'true'",
        "COPY audit_events FROM '/etc/hostname'",
        "SELECT pg_reload_conf()",
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{other_name}'",
    ]
    if role == "admin":
        statements.append(f"GRANT ketadesk_admin TO {other}")
    # Last: a SET ROLE the server let through would change who runs what follows.
    not_a_member = ["ketadesk_physician", "ketadesk_user_manager"] if role == "admin" else []
    statements += [f"SET ROLE {group}" for group in (OWNER_ROLE, *not_a_member)]
    with _raw(attacked, role) as raw, _raw(attacked, other_role):  # the other is logged in
        assert _not_refused(raw, statements) == []


def test_an_admin_cannot_record_anyone_elses_credentials(attacked):
    """Not another user's, even with the audit event written first; not their own without
    the event in the same transaction (what an admin may do is in test_server_credentials)."""
    others = (f"SELECT ketadesk_set_user_credentials('{SERVER_PHYSICIAN}', '1234567893', "
              "'AQ1234563', 'FL')")
    own = f"SELECT ketadesk_set_user_credentials('{SERVER_ADMIN}', NULL, NULL, 'FL')"
    with _raw(attacked, "admin") as raw:
        assert _not_refused(raw, [others, own]) == []
        with raw.transaction():
            raw.execute(
                "INSERT INTO audit_events (user_name, role, action, detail) "
                "VALUES (session_user, 'admin', 'user_updated', %s)",
                (f"user {SERVER_PHYSICIAN} credentials",),
            )
            assert _not_refused(raw, [others]) == []
            raise psycopg.Rollback()  # the event goes too: the module checks nothing changed


# --- the recovery key's role -------------------------------------------------------------------

RECOVER_CALL = "SELECT * FROM ketadesk_recover_user_manager(%s, %s, NULL, NULL)"
A_VERIFIER = "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy"
REMOVED = "gone.pg"


@pytest.fixture(scope="module")
def recovery(practice_server, server_template):
    """A copy of the template practice with a recovery key of its own (made by its physician,
    who manages users) and a removed user; yields the cluster, the address, the recovery
    role's name and the key (as the server knows it: no dashes)."""
    from ketadesk.core.permissions import Role
    from ketadesk.storage.server.recovery_role import recovery_role_name
    from ketadesk.storage.server.server_practice import ServerPractice
    from ketadesk.storage.server.server_recovery import normalised_recovery_key

    address = copy_of(practice_server, server_template[0])
    role = recovery_role_name(address.database)
    try:
        physician = ServerPractice.log_in(
            address, practice_server.ca_certificate, SERVER_PHYSICIAN, PASSWORD
        )
        try:
            physician.add_user(REMOVED, "Dr Gone", Role.PHYSICIAN, PASSWORD, manage_users=True)
            physician.remove_user(REMOVED)
            key = physician.replace_recovery_key()
        finally:
            physician.close()
        yield practice_server, address, role, normalised_recovery_key(key)
    finally:
        drop_copy(practice_server, address)
        with owner_connection(practice_server) as owner:
            owner.execute(f"DROP ROLE IF EXISTS {_quoted(role)}")
            owner.execute(f"DROP ROLE IF EXISTS {_quoted(REMOVED)}")


def _as_recovery(recovery) -> psycopg.Connection:
    cluster, address, role, key = recovery
    return psql_connection(cluster, address, role, key)


def test_the_recovery_role_reads_writes_and_calls_nothing_but_its_function(
    recovery, server_template
):
    """Every table read or written, every other function called, every sequence, every
    group and the schema itself: refused for lack of privilege."""
    cluster, address, role, _ = recovery
    with _as_recovery(recovery) as raw:
        functions = _practice_functions(raw)
        definers_it_may_call = sorted(
            sig for _, sig, _, may, definer in functions if may and definer
        )
        assert definers_it_may_call == [
            "ketadesk_recover_user_manager(text,text,timestamp without time zone,text)"
        ]
        groups = raw.execute(
            "SELECT string_agg(roleid::regrole::text, ',') FROM pg_auth_members "
            "WHERE member = session_user::regrole"
        ).fetchone()
        assert groups == ("ketadesk_recovery",)
        sequences = [r[0] for r in raw.execute(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
        )]
        statements = [
            *(f"SELECT * FROM {_quoted(t)} LIMIT 1" for t in ALL_CLASSIFIED_TABLES),
            *(sql for t in ALL_CLASSIFIED_TABLES for sql in forbidden_statements("admin", t)
              if "OWNER TO" not in sql),
            *(f"SELECT {name}({args})" for name, sig, args, may, _ in functions
              if sig != definers_it_may_call[0] and (not may or name == "ketadesk_audit_next")),
            *(f"SELECT setval('{seq}', 1)" for seq in sequences),
            *(f"GRANT {group} TO {_quoted(role)}" for group in (*GROUP_ROLES, *SERVER_ROLES)),
            *(f"SET ROLE {group}" for group in (*GROUP_ROLES[:4], OWNER_ROLE)),
            f"ALTER ROLE {_quoted(SERVER_PHYSICIAN)} PASSWORD 'taken over'",
            "CREATE TABLE shadow (seq integer)",
            "SELECT pg_read_file('pg_hba.conf')",
        ]
        assert _not_refused(raw, statements) == []
        # Not even a count of the patients.
        assert raw.execute(
            "SELECT has_table_privilege(session_user, 'patients', 'SELECT')"
        ).fetchone() == (False,)
    other_practice = replace(address, database=server_template[0].database)
    with pytest.raises(UserFacingError, match="permission denied for database"):
        psql_connection(cluster, other_practice, role, recovery[3])  # its own practice only


@pytest.mark.parametrize(
    "target", [SERVER_ADMIN, REMOVED, "nobody.pg", OWNER_ROLE, "ketadesk_recovery"]
)
def test_the_recovery_role_resets_no_one_but_an_active_user_manager(recovery, target):
    with _as_recovery(recovery) as raw:
        with pytest.raises(psycopg.errors.RaiseException, match="who manages users"):
            raw.execute(RECOVER_CALL, (target, A_VERIFIER))


def test_the_recovery_function_changes_nothing_without_a_verifier_or_a_current_time(recovery):
    with _as_recovery(recovery) as raw:
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            raw.execute(RECOVER_CALL, (SERVER_PHYSICIAN, "my new password"))
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            raw.execute(
                "SELECT * FROM ketadesk_recover_user_manager(%s, %s, "
                "'2001-01-01 00:00:00', 'c2lnbmF0dXJl')",
                (SERVER_PHYSICIAN, A_VERIFIER),
            )


@pytest.mark.parametrize("role", sorted(ROLES))
def test_a_user_calling_the_recovery_function_is_refused(recovery, role):
    """Even the physician who manages users: only the recovery key's role may."""
    cluster, address, _, _ = recovery
    with psql_connection(cluster, address, ROLES[role], PASSWORD) as raw:
        assert _not_refused(raw, [
            RECOVER_CALL.replace("%s", f"'{name}'", 1).replace("%s", f"'{A_VERIFIER}'")
            for name in (SERVER_PHYSICIAN, SERVER_ADMIN)
        ]) == []


def test_a_wrong_recovery_key_cannot_log_in(recovery):
    cluster, address, role, key = recovery
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    with pytest.raises(UserFacingError, match="refused the password"):
        psql_connection(cluster, address, role, wrong)

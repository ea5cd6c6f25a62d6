"""What each group role may write on a practice server, enforced by PostgreSQL itself.

The app checks permissions (``ketadesk.core.permissions``) before every write; on a server the
database checks them again, so an admin who connects with ``psql`` and their own password is
refused what the app would refuse: signing, clinical decisions, changing a role, touching the
audit trail. Every table is named below exactly once, so a new table cannot be forgotten
(``tests/unit/test_server_practice.py`` checks the lists against the models).

Users are added, re-roled and removed through ``SECURITY DEFINER`` functions
(``ketadesk_add_user``, ``ketadesk_set_user_role``, ``ketadesk_remove_user``) that check the
caller manages users; nobody writes the ``users`` table directly.
"""

from __future__ import annotations

from typing import Any

from ketadesk.storage.server.practice_roles import (
    ADMIN_GROUP,
    OWNER_ROLE,
    PHYSICIAN_GROUP,
    STAFF_GROUP,
    USER_MANAGER_GROUP,
)
from ketadesk.storage.server.recovery_role import (
    RECOVER_FUNCTION,
    RECOVER_SIGNATURE,
    SET_RECOVERY_KEY_FUNCTION,
    SET_RECOVERY_KEY_SIGNATURE,
    recovery_role_grant_statements,
    recovery_role_name,
)

# Rows only ever appended (an audit event): staff insert, nobody updates or deletes (a trigger
# refuses it even to the owner).
APPEND_ONLY_TABLES = ("audit_events",)

# What front-desk admins record as well as physicians (Permission: EDIT_DEMOGRAPHICS,
# RECORD_REPORTED_MEDICATION, EXPORT_PLANS, RECORD_PDMP_CHECK, RECORD_CONSENT,
# RECORD_DISPENSING), and the bookkeeping every write keeps current.
STAFF_WRITABLE_TABLES = (
    "patients",
    "patient_medications",
    "questionnaire_responses",
    "dose_log",
    "dose_breach_alerts",
    "pdmp_checks",
    "consent_records",
    "prescription_fills",
    "signed_plan_contents",
    "patient_roster_status",
    "roster_status_meta",
    "visit_leases",
    "visit_lease_patients",
    "visit_pack_base",
    "visit_synced_records",
    "visit_conflicts",
    # Physicians' licences and DEA registrations: one's own, or anyone's for a user manager
    # (an admin among them), row by row (``server_credentials``).
    "prescriber_credentials",
)

# Clinical records, decisions and signatures (Permission: EDIT_CLINICAL, SIGN,
# VERIFY_MEDICATION, ISSUE_PRESCRIPTION): physicians only.
PHYSICIAN_WRITABLE_TABLES = (
    "patient_allergies",
    "patient_conditions",
    "patient_status_changes",
    "vital_signs",
    "checkins",
    "checkin_symptoms",
    "safety_alert_acks",
    "telemedicine_records",
    "interaction_reviews",
    "review_decisions",
    "patient_protocols",
    "protocol_versions",
    "content_signatures",
    "prescriptions",
    "practice_templates",
    "practice_settings",
    "consent_templates",
)

# Written only by the schema's owner (migrations, ``server init``) and SECURITY DEFINER
# functions: who the users are, their roles and keys, the practice's identity. Each user reads
# only their own wrapped signing key (row-level security, migration 0017).
OWNER_ONLY_TABLES = (
    "users",
    "user_grants",
    "slot_grants",
    "practice_meta",
    "alembic_version",
    "server_signing_keys",
    "server_public_keys",
)

ALL_CLASSIFIED_TABLES = (
    APPEND_ONLY_TABLES + STAFF_WRITABLE_TABLES + PHYSICIAN_WRITABLE_TABLES + OWNER_ONLY_TABLES
)

RESERVED_ROLE_NAMES = frozenset({"postgres", "public", "none", "session_user", "current_user"})
RESERVED_ROLE_PREFIXES = ("pg_", "ketadesk_")

# CREATE ROLE runs with the owner's rights; the caller must be an active user who manages
# users. The password arrives as a SCRAM verifier made by the client, never in clear text.
ADD_USER_FUNCTION = f"""
CREATE OR REPLACE FUNCTION ketadesk_add_user(
    p_user_name text, p_full_name text, p_role text, p_manage_users boolean,
    p_password_verifier text
) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    new_id integer;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM users
        WHERE user_name = session_user AND is_active AND can_manage_users
    ) THEN
        RAISE EXCEPTION 'only users who manage users may add users'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_role NOT IN ('physician', 'admin') THEN
        RAISE EXCEPTION 'unknown role %', p_role USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_password_verifier NOT LIKE 'SCRAM-SHA-256$%' THEN
        RAISE EXCEPTION 'the password must arrive as a SCRAM-SHA-256 verifier'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', p_user_name, p_password_verifier);
    EXECUTE format('GRANT %I TO %I', 'ketadesk_' || p_role, p_user_name);
    IF p_manage_users THEN
        EXECUTE format('GRANT %I TO %I', '{USER_MANAGER_GROUP}', p_user_name);
    END IF;
    INSERT INTO users (user_name, full_name, role, can_manage_users, is_active,
                       licence_states, password_changed_at, created_at, updated_at)
    VALUES (p_user_name, p_full_name, p_role, p_manage_users, true, '',
            now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')
    RETURNING id INTO new_id;
    RETURN new_id;
END $$
"""


# Both check the caller manages users and keep at least one active manager; the group
# memberships and the users row change together, in the caller's transaction (which also
# appends the audit event).
SET_USER_ROLE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION ketadesk_set_user_role(
    p_user_name text, p_role text, p_manage_users boolean
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    target users%ROWTYPE;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM users
        WHERE user_name = session_user AND is_active AND can_manage_users
    ) THEN
        RAISE EXCEPTION 'only users who manage users may change roles'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_role NOT IN ('physician', 'admin') THEN
        RAISE EXCEPTION 'There is no KetaDesk role called %.', p_role;
    END IF;
    SELECT * INTO target FROM users WHERE user_name = p_user_name FOR UPDATE;
    IF NOT FOUND OR NOT target.is_active THEN
        RAISE EXCEPTION 'There is no user called %.', p_user_name;
    END IF;
    IF target.can_manage_users AND NOT p_manage_users AND NOT EXISTS (
        SELECT 1 FROM users WHERE can_manage_users AND is_active AND user_name <> p_user_name
    ) THEN
        RAISE EXCEPTION 'At least one active user must keep the right to manage users.';
    END IF;
    EXECUTE format('REVOKE %I, %I, %I FROM %I', '{PHYSICIAN_GROUP}', '{ADMIN_GROUP}',
                   '{USER_MANAGER_GROUP}', p_user_name);
    EXECUTE format('GRANT %I TO %I', 'ketadesk_' || p_role, p_user_name);
    IF p_manage_users THEN
        EXECUTE format('GRANT %I TO %I', '{USER_MANAGER_GROUP}', p_user_name);
    END IF;
    UPDATE users SET role = p_role, can_manage_users = p_manage_users,
                     updated_at = now() AT TIME ZONE 'UTC'
    WHERE id = target.id;
END $$
"""

REMOVE_USER_FUNCTION = f"""
CREATE OR REPLACE FUNCTION ketadesk_remove_user(p_user_name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    target users%ROWTYPE;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM users
        WHERE user_name = session_user AND is_active AND can_manage_users
    ) THEN
        RAISE EXCEPTION 'only users who manage users may remove users'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_user_name = session_user THEN
        RAISE EXCEPTION 'You cannot remove yourself.';
    END IF;
    SELECT * INTO target FROM users WHERE user_name = p_user_name FOR UPDATE;
    IF NOT FOUND OR NOT target.is_active THEN
        RAISE EXCEPTION 'There is no user called %.', p_user_name;
    END IF;
    IF target.can_manage_users AND NOT EXISTS (
        SELECT 1 FROM users WHERE can_manage_users AND is_active AND user_name <> p_user_name
    ) THEN
        RAISE EXCEPTION 'At least one active user must keep the right to manage users.';
    END IF;
    EXECUTE format('ALTER ROLE %I NOLOGIN', p_user_name);
    EXECUTE format('REVOKE %I, %I, %I FROM %I', '{PHYSICIAN_GROUP}', '{ADMIN_GROUP}',
                   '{USER_MANAGER_GROUP}', p_user_name);
    UPDATE users SET is_active = false, updated_at = now() AT TIME ZONE 'UTC'
    WHERE id = target.id;
END $$
"""

USER_FUNCTIONS = (
    (ADD_USER_FUNCTION, "ketadesk_add_user(text, text, text, boolean, text)"),
    (SET_RECOVERY_KEY_FUNCTION, SET_RECOVERY_KEY_SIGNATURE),
    (SET_USER_ROLE_FUNCTION, "ketadesk_set_user_role(text, text, boolean)"),
    (REMOVE_USER_FUNCTION, "ketadesk_remove_user(text)"),
)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def grant_statements(existing_tables: set[str], recovery_role: str | None = None) -> list[str]:
    """The GRANT/REVOKE statements for the tables that exist (run as the owner);
    ``recovery_role`` is the practice's recovery role when the server has one."""
    staff, physician = _quoted(STAFF_GROUP), _quoted(PHYSICIAN_GROUP)
    statements = [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC, {staff}, {physician}, "
        f"{_quoted(ADMIN_GROUP)}, {_quoted(USER_MANAGER_GROUP)}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {staff}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {staff}",
    ]
    for table in APPEND_ONLY_TABLES:
        if table in existing_tables:
            statements.append(f"GRANT INSERT ON {_quoted(table)} TO {staff}")
    for table in STAFF_WRITABLE_TABLES:
        if table in existing_tables:
            statements.append(f"GRANT INSERT, UPDATE, DELETE ON {_quoted(table)} TO {staff}")
    for table in PHYSICIAN_WRITABLE_TABLES:
        if table in existing_tables:
            statements.append(f"GRANT INSERT, UPDATE, DELETE ON {_quoted(table)} TO {physician}")
    # The migrations' own SECURITY DEFINER functions (0017): each checks it is the caller's
    # own key or password (or a user manager's reset) itself; only staff may call them, never
    # PUBLIC (a definer open to every role would be a way around every grant).
    if "server_signing_keys" in existing_tables:
        for signature in STAFF_DEFINER_FUNCTIONS:
            statements += [
                f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC",
                f"GRANT EXECUTE ON FUNCTION {signature} TO {staff}",
            ]
        # The recovery key's one function, for the recovery group alone (``recovery_role``).
        statements += [
            RECOVER_FUNCTION,
            f"ALTER FUNCTION {RECOVER_SIGNATURE} OWNER TO {_quoted(OWNER_ROLE)}",
            *recovery_role_grant_statements(recovery_role),
        ]
    for body, signature in USER_FUNCTIONS:
        statements += [
            body,
            f"ALTER FUNCTION {signature} OWNER TO {_quoted(OWNER_ROLE)}",
            f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC",
            f"GRANT EXECUTE ON FUNCTION {signature} TO {_quoted(USER_MANAGER_GROUP)}",
        ]
    return statements


STAFF_DEFINER_FUNCTIONS = (
    "ketadesk_store_signing_key(text, text, text, text)",
    "ketadesk_set_password(text, text)",
)


def apply_practice_grants(connection: Any) -> None:
    """Grant each group what it may write, on a SQLAlchemy connection of the schema's owner."""
    from sqlalchemy import inspect

    existing = set(inspect(connection).get_table_names())
    unknown = existing - set(ALL_CLASSIFIED_TABLES)
    if unknown:
        raise RuntimeError(
            "tables without a grant rule in practice_grants.py: " + ", ".join(sorted(unknown))
        )
    recovery_role = recovery_role_name(
        connection.exec_driver_sql("SELECT current_database()").scalar_one()
    )
    has_recovery_role = connection.exec_driver_sql(
        "SELECT 1 FROM pg_roles WHERE rolname = %(name)s", {"name": recovery_role}
    ).first()
    # Straight to psycopg without parameters, so '%' in the function body is not a placeholder.
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        for statement in grant_statements(
            existing, recovery_role if has_recovery_role else None
        ):
            cursor.execute(statement)
    finally:
        cursor.close()

"""The recovery key's own login role on a practice server, and the two functions around it.

A practice server's recovery key is the password of a login role kept for it alone
(``ketadesk_recovery_<database>``: roles belong to the whole cluster, so each practice
database has its own). That role is a member of one group only, ``ketadesk_recovery``, which
may read and write no table and may call exactly one function,
``ketadesk_recover_user_manager``. (A group rather than a grant to the login role, so that a
backup's grants name no login role a new server lacks.) The function refuses any caller but
this database's recovery role; it sets a new password for an active user who manages users,
drops their wrapped signing key (their next log-in makes a new one, as after a manager's reset)
and appends the ``recovery_key_used`` audit event, all in one transaction. The event is signed
by an Ed25519 key derived from the recovery key (``server_recovery``), whose public half is
listed in ``server_public_keys`` under ``recovery key`` (as on a file), so ``verify-audit``
accepts it, names one forged in its name and refuses it on any other event.

Signing needs the event's number and the hash it follows under the chain's lock: the client
calls the function twice in one transaction, first without a signature (it checks everything,
takes the lock and answers what to sign, changing nothing), then with the signature.

``ketadesk_set_recovery_key`` makes (or replaces) the role's password and lists the new public
key; the schema's owner calls it at ``server init``, a user who manages users at
``server recovery-key`` (the caller appends the audit event). The earlier key stops working at
once: the role's password is replaced. (Like every PostgreSQL role, the recovery role may set
its own password: whoever holds the key can lock it to themselves, and nothing more; the next
``server recovery-key`` takes it back.)
"""

from __future__ import annotations

from ketadesk.core.audit_actions import RECOVERY_KEY_USED
from ketadesk.storage.security.signing_keys import RECOVERY_ROLE, RECOVERY_SIGNER
from ketadesk.storage.server.practice_roles import (
    ADMIN_GROUP,
    PHYSICIAN_GROUP,
    RECOVERY_GROUP,
    STAFF_GROUP,
    USER_MANAGER_GROUP,
)

RECOVERY_ROLE_PREFIX = "ketadesk_recovery_"
# Who signs the recovery event and whose public keys are the recovery keys': the same name as
# on a practice file ("recovery key", never a user name: it has a space), so verify-audit's one
# rule (the recovery key signs only recovery_key_used events) holds on both back ends.
RECOVERY_EVENT_ROLE = RECOVERY_ROLE
_EVENT_WHO = f"'{RECOVERY_SIGNER}', '{RECOVERY_EVENT_ROLE}'"
# The audit chain's lock (migration 0017), taken before reading the chain's end.
_CHAIN_LOCK = 0x4B455441
# A role name holds at most 63 bytes; a longer database name gives its md5 instead.
_NAME_LIMIT = 63

# The recovery role's name for the database the statement runs in (as in recovery_role_name).
_ROLE_OF_THIS_DATABASE = f"""CASE
        WHEN octet_length('{RECOVERY_ROLE_PREFIX}' || current_database()) <= {_NAME_LIMIT}
        THEN '{RECOVERY_ROLE_PREFIX}' || current_database()
        ELSE '{RECOVERY_ROLE_PREFIX}' || md5(current_database()) END"""

RECOVER_SIGNATURE = "ketadesk_recover_user_manager(text, text, timestamp without time zone, text)"
SET_RECOVERY_KEY_SIGNATURE = "ketadesk_set_recovery_key(text, text)"


def recovery_role_name(database: str) -> str:
    """The recovery role of the practice in ``database``."""
    import hashlib

    name = RECOVERY_ROLE_PREFIX + database
    if len(name.encode("utf-8")) <= _NAME_LIMIT:
        return name
    return RECOVERY_ROLE_PREFIX + hashlib.md5(database.encode("utf-8")).hexdigest()


# The recovery role's one function (see above).
RECOVER_FUNCTION = f"""
CREATE OR REPLACE FUNCTION ketadesk_recover_user_manager(
    p_user_name text, p_password_verifier text, p_occurred_at timestamp, p_signature text
) RETURNS TABLE (database_id text, next_seq bigint, prev_hash text, now_utc timestamp,
                 detail text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    target users%ROWTYPE;
BEGIN
    IF session_user <> ({_ROLE_OF_THIS_DATABASE}) THEN
        RAISE EXCEPTION 'only the practice''s recovery key resets a password this way'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_password_verifier IS NULL OR p_password_verifier NOT LIKE 'SCRAM-SHA-256$%' THEN
        RAISE EXCEPTION 'the password must arrive as a SCRAM-SHA-256 verifier'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO target FROM users u WHERE u.user_name = p_user_name FOR UPDATE;
    IF NOT FOUND OR NOT target.is_active OR NOT target.can_manage_users THEN
        RAISE EXCEPTION 'There is no active user called % who manages users: the '
            'recovery key resets only such a user''s password.', p_user_name;
    END IF;
    PERFORM pg_advisory_xact_lock({_CHAIN_LOCK});
    SELECT m.value INTO database_id FROM practice_meta m WHERE m.key = 'database_id';
    SELECT e.seq + 1, e.row_hash INTO next_seq, prev_hash
    FROM audit_events e ORDER BY e.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        next_seq := 1;
        prev_hash := repeat('0', 64);
    END IF;
    now_utc := date_trunc('microseconds', clock_timestamp() AT TIME ZONE 'UTC');
    detail := 'user ' || p_user_name || ': password set with the recovery key';
    IF p_signature IS NULL THEN
        RETURN NEXT;  -- what to sign; nothing changed yet
        RETURN;
    END IF;
    -- The time signed must be this transaction's, not one chosen long before or after.
    IF p_occurred_at IS NULL OR p_occurred_at > now_utc
       OR p_occurred_at < now_utc - interval '5 minutes' THEN
        RAISE EXCEPTION 'the recovery event''s time is not now'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('ALTER ROLE %I PASSWORD %L', p_user_name, p_password_verifier);
    UPDATE users SET password_changed_at = now() AT TIME ZONE 'UTC',
                     updated_at = now() AT TIME ZONE 'UTC'
    WHERE id = target.id;
    DELETE FROM server_signing_keys k WHERE k.user_name = p_user_name;
    -- The chain's trigger checks the number, the hash followed and the hash itself.
    INSERT INTO audit_events (seq, occurred_at, user_name, role, patient_id, action, detail,
                              prev_hash, row_hash, signed_by, signature)
    VALUES (next_seq, p_occurred_at, {_EVENT_WHO}, NULL, '{RECOVERY_KEY_USED}', detail,
            prev_hash,
            ketadesk_audit_event_hash(prev_hash, next_seq, p_occurred_at, {_EVENT_WHO},
                                      NULL, '{RECOVERY_KEY_USED}', detail),
            '{RECOVERY_SIGNER}', p_signature);
    now_utc := p_occurred_at;
    RETURN NEXT;
END $$
"""


_GROUPS = (STAFF_GROUP, PHYSICIAN_GROUP, ADMIN_GROUP, USER_MANAGER_GROUP)
_GROUP_LITERALS = ", ".join(f"'{group}'" for group in _GROUPS)

# Make or replace the recovery role's password (a SCRAM verifier made by the client) and list
# the recovery key's public signing key.
SET_RECOVERY_KEY_FUNCTION = f"""
CREATE OR REPLACE FUNCTION ketadesk_set_recovery_key(
    p_password_verifier text, p_public_key text
) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    role_name text := {_ROLE_OF_THIS_DATABASE};
BEGIN
    -- The schema's owner (server init) or an active user who manages users.
    IF session_user <> current_user AND NOT EXISTS (
        SELECT 1 FROM users
        WHERE user_name = session_user AND is_active AND can_manage_users
    ) THEN
        RAISE EXCEPTION 'only users who manage users may replace the recovery key'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_password_verifier IS NULL OR p_password_verifier NOT LIKE 'SCRAM-SHA-256$%' THEN
        RAISE EXCEPTION 'the recovery key must arrive as a SCRAM-SHA-256 verifier'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
        EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L', role_name, p_password_verifier);
    ELSE
        EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', role_name, p_password_verifier);
    END IF;
    EXECUTE format('REVOKE %I, %I, %I, %I FROM %I', {_GROUP_LITERALS}, role_name);
    EXECUTE format('GRANT %I TO %I', '{RECOVERY_GROUP}', role_name);
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), role_name);
    INSERT INTO server_public_keys (user_name, public_key, registered_at)
    VALUES ('{RECOVERY_SIGNER}', p_public_key, now() AT TIME ZONE 'UTC');
    RETURN role_name;
END $$
"""


def _revoke_function_grants(role_name: str) -> str:
    """Revoke every function grant ``role_name`` holds in the schema (only those: a blanket
    REVOKE would write out the default rights of every other function, changing them)."""
    literal = "'" + role_name.replace("'", "''") + "'"
    return (
        "DO $$ DECLARE f regprocedure; BEGIN FOR f IN SELECT p.oid::regprocedure "
        "FROM pg_proc p, aclexplode(p.proacl) a WHERE p.pronamespace = 'public'::regnamespace "
        f"AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = {literal}) LOOP "
        f"EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %I', f, {literal}); "
        "END LOOP; END $$"
    )


def recovery_role_grant_statements(role_name: str | None) -> list[str]:
    """Keep the recovery function closed to all but the recovery group, the group's rights
    exact (that function, the schema's name space, nothing else) and the practice's recovery
    role, when there is one, in that group and no other (``server upgrade`` runs these)."""
    group = f'"{RECOVERY_GROUP}"'
    statements = [
        # A server prepared before recovery keys has no such group yet.
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{RECOVERY_GROUP}')"
        f" THEN CREATE ROLE {group} NOLOGIN; END IF; END $$",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {group}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {group}",
        _revoke_function_grants(RECOVERY_GROUP),
        f"REVOKE ALL ON FUNCTION {RECOVER_SIGNATURE} FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA public TO {group}",
        f"GRANT EXECUTE ON FUNCTION {RECOVER_SIGNATURE} TO {group}",
    ]
    if role_name is None:
        return statements
    role = '"' + role_name.replace('"', '""') + '"'
    groups = ", ".join(f'"{g}"' for g in _GROUPS)
    return [
        *statements,
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}",
        _revoke_function_grants(role_name),
        f"REVOKE {groups} FROM {role}",
        f"GRANT {group} TO {role}",
    ]

"""practice server: the audit chain is computed and serialised by the database; users'
signing keys are kept there, wrapped by their passwords

On PostgreSQL a trigger takes the chain's lock, works out each new event's number and previous
hash, and computes its hash (or checks the one the workstation computed to sign it), so two
workstations never fork the chain whatever their clients do. A practice file is unchanged: SQLite
lets one writer in at a time and the app computes the chain.

Each user's Ed25519 signing key is stored on the server wrapped by a key derived from their
password (the client wraps and unwraps it); row-level security lets each login role read only
its own row, and ``ketadesk_store_signing_key`` writes only the caller's own. Every public key a
user has signed with is listed for all, never changed or removed. The two tables exist in a
practice file too, empty (its key slots hold the keys).

Revision ID: e5f6a7b80017
Revises: f6a7b8c90018
Create Date: 2026-12-03 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "e5f6a7b80017"
down_revision = "f6a7b8c90018"  # chained after 0018 (issue 17f), merged first
branch_labels = None
depends_on = None

# pg_advisory_xact_lock key of the chain (b"KETA"); ServerPractice.session takes the same one.
_CHAIN_LOCK = 0x4B455441

# The exact text ketadesk.core.audit_chain.event_hash hashes: compact JSON (no spaces), the
# time as Python's isoformat(timespec="microseconds") of an aware UTC datetime, characters
# outside ASCII as themselves. to_json escapes strings as json.dumps(ensure_ascii=False) does.
_EVENT_HASH = """
CREATE FUNCTION ketadesk_audit_event_hash(
    p_prev_hash text, p_seq bigint, p_occurred_at timestamp, p_user_name text, p_role text,
    p_patient_id bigint, p_action text, p_detail text
) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT encode(sha256(convert_to(
    '[' || to_json(p_prev_hash)::text
    || ',' || p_seq::text
    || ',' || to_json(to_char(p_occurred_at, 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00')::text
    || ',' || to_json(p_user_name)::text
    || ',' || to_json(p_role)::text
    || ',' || coalesce(p_patient_id::text, 'null')
    || ',' || to_json(p_action)::text
    || ',' || to_json(p_detail)::text
    || ']', 'UTF8')), 'hex')
$$
"""

# The next event's number, the hash it follows and the server's time, under the chain's lock
# (held until the caller's transaction ends): a workstation that signs its events asks for
# these first, computes the hash itself and signs it; the trigger checks what it computed.
_NEXT = f"""
CREATE FUNCTION ketadesk_audit_next(
    OUT next_seq bigint, OUT prev_hash text, OUT now_utc timestamp
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({_CHAIN_LOCK});
    SELECT e.seq + 1, e.row_hash INTO next_seq, prev_hash
    FROM audit_events e ORDER BY e.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        next_seq := 1;
        prev_hash := repeat('0', 64);
    END IF;
    now_utc := date_trunc('microseconds', clock_timestamp() AT TIME ZONE 'UTC');
END $$
"""

# Every insert, whoever makes it: an event given without number and hashes gets them from the
# database; one given with them is refused unless they are exactly what the database computes.
_CHAIN_TRIGGER_FUNCTION = f"""
CREATE FUNCTION audit_events_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    expected_seq bigint;
    expected_prev text;
    computed text;
BEGIN
    PERFORM pg_advisory_xact_lock({_CHAIN_LOCK});
    SELECT e.seq + 1, e.row_hash INTO expected_seq, expected_prev
    FROM audit_events e ORDER BY e.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        expected_seq := 1;
        expected_prev := repeat('0', 64);
    END IF;
    IF NEW.seq IS NULL AND NEW.prev_hash IS NULL AND NEW.row_hash IS NULL THEN
        NEW.seq := expected_seq;
        NEW.prev_hash := expected_prev;
    ELSIF NEW.seq IS DISTINCT FROM expected_seq OR NEW.prev_hash IS DISTINCT FROM expected_prev
    THEN
        RAISE EXCEPTION 'audit event % does not follow the chain (event % is next)',
            NEW.seq, expected_seq USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    -- The id (storage order, which verify-audit walks) is drawn under the lock too: one drawn
    -- by the INSERT before it waited here would put this event before the one ahead of it.
    NEW.id := nextval(pg_get_serial_sequence('audit_events', 'id'));
    IF NEW.occurred_at IS NULL THEN
        NEW.occurred_at := date_trunc('microseconds', clock_timestamp() AT TIME ZONE 'UTC');
    END IF;
    NEW.detail := coalesce(NEW.detail, '');
    computed := ketadesk_audit_event_hash(
        NEW.prev_hash, NEW.seq, NEW.occurred_at, NEW.user_name, NEW.role, NEW.patient_id,
        NEW.action, NEW.detail);
    IF NEW.row_hash IS NULL THEN
        NEW.row_hash := computed;
    ELSIF NEW.row_hash <> computed THEN
        RAISE EXCEPTION 'audit event % does not hash to what it says', NEW.seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$
"""


# Only the caller's own row, in the caller's own name; a public key is never moved to another
# user. The key stays wrapped: the server never sees a private key or a password.
_STORE_SIGNING_KEY = """
CREATE FUNCTION ketadesk_store_signing_key(
    p_public_key text, p_wrapped_key text, p_kdf_salt text, p_kdf_params text
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM users WHERE user_name = session_user AND is_active) THEN
        RAISE EXCEPTION 'only an active user stores a signing key, their own'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (
        SELECT 1 FROM server_public_keys
        WHERE public_key = p_public_key AND user_name <> session_user
    ) THEN
        RAISE EXCEPTION 'That signing key is another user''s.'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO server_signing_keys (user_name, public_key, wrapped_key, kdf_salt, kdf_params,
                                     updated_at)
    VALUES (session_user, p_public_key, p_wrapped_key, p_kdf_salt, p_kdf_params,
            now() AT TIME ZONE 'UTC')
    ON CONFLICT (user_name) DO UPDATE SET
        public_key = EXCLUDED.public_key, wrapped_key = EXCLUDED.wrapped_key,
        kdf_salt = EXCLUDED.kdf_salt, kdf_params = EXCLUDED.kdf_params,
        updated_at = EXCLUDED.updated_at;
    INSERT INTO server_public_keys (user_name, public_key, registered_at)
    VALUES (session_user, p_public_key, now() AT TIME ZONE 'UTC')
    ON CONFLICT (public_key) DO NOTHING;
END $$
"""


# ``user passwd`` and a manager's reset on a server: the caller is the user themself or an
# active user who manages users; the password arrives as a SCRAM verifier (never in clear). A
# reset drops the user's wrapped key, which the new password cannot open: their next log-in
# makes a new one (the old public key stays listed, so their earlier events still verify).
# The caller's transaction appends the audit event (and, for their own password, the key
# wrapped again under the new password).
_SET_PASSWORD = """
CREATE FUNCTION ketadesk_set_password(p_user_name text, p_password_verifier text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    target users%ROWTYPE;
BEGIN
    IF p_user_name IS DISTINCT FROM session_user AND NOT EXISTS (
        SELECT 1 FROM users
        WHERE user_name = session_user AND is_active AND can_manage_users
    ) THEN
        RAISE EXCEPTION 'only the user themself or a user who manages users sets a password'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_password_verifier NOT LIKE 'SCRAM-SHA-256$%' THEN
        RAISE EXCEPTION 'the password must arrive as a SCRAM-SHA-256 verifier'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO target FROM users WHERE user_name = p_user_name FOR UPDATE;
    IF NOT FOUND OR NOT target.is_active THEN
        RAISE EXCEPTION 'There is no user called %.', p_user_name;
    END IF;
    EXECUTE format('ALTER ROLE %I PASSWORD %L', p_user_name, p_password_verifier);
    UPDATE users SET password_changed_at = now() AT TIME ZONE 'UTC',
                     updated_at = now() AT TIME ZONE 'UTC'
    WHERE id = target.id;
    IF p_user_name <> session_user THEN
        DELETE FROM server_signing_keys WHERE user_name = p_user_name;
    END IF;
END $$
"""


def _create_key_tables() -> None:
    op.create_table(
        "server_signing_keys",
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("wrapped_key", sa.String(length=200), nullable=False),
        sa.Column("kdf_salt", sa.String(length=64), nullable=False),
        sa.Column("kdf_params", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_name", name=op.f("pk_server_signing_keys")),
    )
    op.create_table(
        "server_public_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_public_keys")),
        sa.UniqueConstraint("public_key", name=op.f("uq_server_public_keys_public_key")),
    )
    op.create_index(
        op.f("ix_server_public_keys_user_name"), "server_public_keys", ["user_name"],
        unique=False,
    )


def _run(statement: str) -> None:
    """Straight to the driver: ':MI' in a time format or '%' in a message is not a parameter."""
    cursor = op.get_bind().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def upgrade() -> None:
    _create_key_tables()
    if op.get_bind().dialect.name != "postgresql":
        return
    _run("ALTER TABLE server_signing_keys ENABLE ROW LEVEL SECURITY")
    _run(
        "CREATE POLICY own_signing_key ON server_signing_keys FOR SELECT "
        "USING (user_name = session_user)"
    )
    for event in ("UPDATE", "DELETE"):
        _run(
            f"CREATE TRIGGER server_public_keys_no_{event.lower()} BEFORE {event} "
            "ON server_public_keys FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
    _run(
        "CREATE TRIGGER server_public_keys_no_truncate BEFORE TRUNCATE ON server_public_keys "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
    )
    _run(_STORE_SIGNING_KEY)
    _run(_SET_PASSWORD)
    _run(_EVENT_HASH)
    _run(_NEXT)
    _run(_CHAIN_TRIGGER_FUNCTION)
    _run(
        "CREATE TRIGGER audit_events_chain BEFORE INSERT ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_chain()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _downgrade_server()
    op.drop_index(op.f("ix_server_public_keys_user_name"), table_name="server_public_keys")
    op.drop_table("server_public_keys")
    op.drop_table("server_signing_keys")


def _downgrade_server() -> None:
    op.execute("DROP FUNCTION ketadesk_set_password(text, text)")
    op.execute("DROP FUNCTION ketadesk_store_signing_key(text, text, text, text)")
    op.execute("DROP TRIGGER audit_events_chain ON audit_events")
    op.execute("DROP FUNCTION audit_events_chain()")
    op.execute("DROP FUNCTION ketadesk_audit_next()")
    op.execute(
        "DROP FUNCTION ketadesk_audit_event_hash(text, bigint, timestamp, text, text, bigint, "
        "text, text)"
    )

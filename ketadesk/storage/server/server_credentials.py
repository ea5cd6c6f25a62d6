"""Users' NPI, DEA number and licence states on a practice server, and the row rules of
physicians' licences and DEA registrations there.

Nobody writes the ``users`` table directly on a server (``practice_grants``); credentials go
through ``ketadesk_set_user_credentials``, a ``SECURITY DEFINER`` function that applies the
file practice's rule (``storage.security.users.set_credentials``): a user may record their
own, and only an active user who manages users may record anyone else's. The function also
refuses unless the caller's own transaction has already appended the audit event naming the
change, so the change and its event are committed together or not at all, whoever calls it
(``psql`` included).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.users import check_credentials
from ketadesk.storage.server.practice_roles import OWNER_ROLE, STAFF_GROUP

if TYPE_CHECKING:
    from ketadesk.storage.server.server_practice import ServerPractice

SET_CREDENTIALS_SIGNATURE = "ketadesk_set_user_credentials(text, text, text, text)"

# The shapes are checked again here (the check digits are the client's, before the call), so
# a psql caller cannot store what the app would refuse to read.
SET_CREDENTIALS_FUNCTION = f"""
CREATE OR REPLACE FUNCTION ketadesk_set_user_credentials(
    p_user_name text, p_npi text, p_dea_number text, p_licence_states text
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    target users%ROWTYPE;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM users
        WHERE user_name = session_user AND is_active
          AND (can_manage_users OR session_user = p_user_name)
    ) THEN
        RAISE EXCEPTION 'only users who manage users may change another user''s credentials'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO target FROM users WHERE user_name = p_user_name FOR UPDATE;
    IF NOT FOUND OR NOT target.is_active THEN
        RAISE EXCEPTION 'There is no user called %.', p_user_name;
    END IF;
    IF p_npi IS NOT NULL AND p_npi !~ '^[0-9]{{10}}$' THEN
        RAISE EXCEPTION 'The NPI must be 10 digits with a valid check digit.';
    END IF;
    IF p_dea_number IS NOT NULL AND p_dea_number !~ '^[A-Z][A-Z9][0-9]{{7}}$' THEN
        RAISE EXCEPTION 'A DEA number is two letters followed by seven digits.';
    END IF;
    IF p_licence_states !~ '^((FL|NJ)(,(FL|NJ))?)?$' THEN
        RAISE EXCEPTION 'Licence states are FL and NJ only for this practice.';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM audit_events
        WHERE xmin = pg_current_xact_id()::xid AND user_name = session_user
          AND action = '{audit_actions.USER_UPDATED}'
          AND detail = 'user ' || p_user_name || ' credentials'
    ) THEN
        RAISE EXCEPTION 'credentials change only with their audit event, in one transaction'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE users SET npi = p_npi, dea_number = p_dea_number,
                     licence_states = p_licence_states,
                     updated_at = now() AT TIME ZONE 'UTC'
    WHERE id = target.id;
END $$
"""


# Physicians' licences and DEA registrations (``prescriber_credentials``, which staff may
# write: ``practice_grants``) follow the same rule as on a file
# (``storage.compliance.credentials``), row by row: a physician's own, or any physician's for
# a user who manages users, recorded in the caller's own name. A trigger, not row-level
# security: pg_dump refuses to back up a table with policies rather than risk leaving rows out.
CREDENTIALS_GUARD_FUNCTION = """
CREATE OR REPLACE FUNCTION ketadesk_prescriber_credentials_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    is_manager boolean;
    checked prescriber_credentials%ROWTYPE;
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = session_user) THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;  -- the owner's own work
    END IF;
    SELECT EXISTS (SELECT 1 FROM users WHERE user_name = session_user AND is_active
                   AND can_manage_users) INTO is_manager;
    FOREACH checked IN ARRAY CASE TG_OP WHEN 'INSERT' THEN ARRAY[NEW]
                                        WHEN 'DELETE' THEN ARRAY[OLD]
                                        ELSE ARRAY[OLD, NEW] END LOOP
        IF NOT EXISTS (SELECT 1 FROM users WHERE user_name = checked.user_name
                       AND role = 'physician') THEN
            RAISE EXCEPTION 'Licences and DEA registrations are kept for physicians only.'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF checked.user_name <> session_user AND NOT is_manager THEN
            RAISE EXCEPTION 'only users who manage users may change another user''s licences'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END LOOP;
    IF TG_OP <> 'DELETE' AND NEW.recorded_by <> session_user THEN
        RAISE EXCEPTION 'a licence or registration is recorded in the recorder''s own name'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$
"""


def credentials_function_statements() -> list[str]:
    """Create the function as the owner's (staff may call it: it checks who, row by row) and
    the guard of ``prescriber_credentials``."""
    return [
        SET_CREDENTIALS_FUNCTION,
        f'ALTER FUNCTION {SET_CREDENTIALS_SIGNATURE} OWNER TO "{OWNER_ROLE}"',
        f"REVOKE ALL ON FUNCTION {SET_CREDENTIALS_SIGNATURE} FROM PUBLIC",
        f'GRANT EXECUTE ON FUNCTION {SET_CREDENTIALS_SIGNATURE} TO "{STAFF_GROUP}"',
        CREDENTIALS_GUARD_FUNCTION,
        "DROP TRIGGER IF EXISTS prescriber_credentials_guard ON prescriber_credentials",
        "CREATE TRIGGER prescriber_credentials_guard BEFORE INSERT OR UPDATE OR DELETE ON "
        "prescriber_credentials FOR EACH ROW EXECUTE FUNCTION "
        "ketadesk_prescriber_credentials_guard()",
    ]


def apply_credentials_function(connection: Any) -> None:
    """Create (or bring up to date) the function, on a SQLAlchemy connection of the owner."""
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        for statement in credentials_function_statements():
            cursor.execute(statement)
    finally:
        cursor.close()


def set_credentials_in_session(
    session: Session,
    actor: Actor,
    user_name: str,
    *,
    npi: str | None,
    dea_number: str | None,
    licence_states: tuple[str, ...],
) -> None:
    """Record ``user_name``'s credentials inside the caller's server transaction: the audit
    event first, then the server's function (which looks for it). Raises UserFacingError for
    a value the file practice would refuse too."""
    if actor.user_name != user_name:
        require(actor, Permission.MANAGE_USERS, "change another user's credentials")
    npi = (npi or "").strip() or None
    dea_number = (dea_number or "").strip().upper() or None
    check_credentials(npi, dea_number, licence_states)
    record_event(
        session, actor, audit_actions.USER_UPDATED, detail=f"user {user_name} credentials"
    )
    session.execute(
        text("SELECT ketadesk_set_user_credentials(:name, :npi, :dea, :states)"),
        {"name": user_name, "npi": npi, "dea": dea_number, "states": ",".join(licence_states)},
    )


def set_credentials_on_server(
    practice: ServerPractice,
    user_name: str,
    *,
    npi: str | None,
    dea_number: str | None,
    licence_states: tuple[str, ...],
) -> None:
    """Record credentials on an open ``ServerPractice`` as its logged-in user, in one
    transaction with the audit event."""
    if not user_name:
        raise UserFacingError("Choose a user first.")
    with practice.session() as session:
        set_credentials_in_session(
            session, practice.actor, user_name, npi=npi, dea_number=dea_number,
            licence_states=licence_states,
        )

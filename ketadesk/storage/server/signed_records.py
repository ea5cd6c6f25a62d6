"""Signed and issued records frozen by the practice server itself.

On a file practice the services never change a signed record (a signed protocol version, a
signed interaction review and its decisions, an issued prescription, a printed plan, a
physician's signature, a consent); on a server a physician who connects with ``psql`` holds
UPDATE on those tables (``practice_grants``) and could. These triggers refuse it to everyone,
the schema's owner included, except the transitions the services themselves make:

- a draft protocol version or interaction review is signed, a prescription issued and a
  signature added, each in the name of the user doing it (only the schema's owner, moving a
  practice's records, puts them in another name); drafts stay editable;
- a questionnaire stays editable until a physician acknowledges its item-9 alert;
- an active protocol is discontinued with a reason (``discontinue_protocol``);
- a prescription just issued gets its content hash, once (``issue_prescription``); an issued
  prescription is voided with a reason by the user voiding it (``void_prescription``); its
  fills are added as new rows (``record_fill``).

Each refusal is a sentence in the clinician's words raised with SQLSTATE P0001, which
``ServerPractice.session`` shows as it is. A data migration that must rewrite such rows
disables the trigger by name for its own transaction.
"""

from __future__ import annotations

from typing import Any

# Rows never changed nor removed once written: a physician's signature over content, the
# document of a printed signed plan, a consent text version, a patient's signed consent and a
# physician's acknowledgement of a safety alert (signed over the form and its answer).
FROZEN_TABLES = {
    "content_signatures": "A physician's signature cannot be changed or removed.",
    "signed_plan_contents": "A printed signed plan is kept as it was printed.",
    "consent_templates": "A consent text version is never edited; add a new version.",
    "consent_records": "A patient's signed consent cannot be changed or removed.",
    "safety_alert_acks": "An acknowledged safety alert cannot be changed or removed.",
    "prescription_fills": "A recorded dispensing cannot be changed or removed.",
}

_FROZEN_FUNCTION = """
CREATE OR REPLACE FUNCTION ketadesk_refuse_frozen_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0];
END $$
"""

# Who may put a record in another user's name: the schema's owner alone (moving a practice's
# records, already signed, onto the server).
_IS_OWNER_FUNCTION = """
CREATE OR REPLACE FUNCTION ketadesk_is_owner() RETURNS boolean
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT rolsuper FROM pg_roles WHERE rolname = session_user
$$
"""

# A physician's signature is added in the name of the user signing (TG_ARGV[0] names the
# column holding the signer, TG_ARGV[1] is the refusal).
_OWN_NAME_FUNCTION = """
CREATE OR REPLACE FUNCTION ketadesk_signed_in_own_name() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF to_jsonb(NEW) ->> TG_ARGV[0] IS DISTINCT FROM session_user
       AND NOT ketadesk_is_owner() THEN
        RAISE EXCEPTION '%', TG_ARGV[1];
    END IF;
    RETURN NEW;
END $$
"""

SIGNER_COLUMNS = {
    "content_signatures": (
        "signed_by", "A signature is added only in the name of the physician signing."
    ),
}


def _signed_row_guard(function: str, frozen: str, signer: str) -> str:
    """A row with status 'signed' is never changed or removed, and a draft is signed only in
    the name of the user signing it (the owner excepted, for moving records)."""
    return f"""
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF OLD.status = 'signed' THEN
        RAISE EXCEPTION '{frozen}';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF NEW.status = 'signed' AND OLD.status IS DISTINCT FROM 'signed'
       AND NEW.signed_by IS DISTINCT FROM session_user AND NOT ketadesk_is_owner() THEN
        RAISE EXCEPTION '{signer}';
    END IF;
    RETURN NEW;
END $$
"""


# A signed version is never changed (editing a signed protocol starts a new draft).
_PROTOCOL_VERSION_FUNCTION = _signed_row_guard(
    "ketadesk_guard_protocol_version",
    "A signed protocol version cannot be changed or removed; edit the protocol as a new draft.",
    "A protocol version is signed only in the name of the physician signing it.",
)

# Only the discontinuing columns change, once: an active protocol is discontinued with a reason.
_PATIENT_PROTOCOL_FUNCTION = """
CREATE OR REPLACE FUNCTION ketadesk_guard_patient_protocol() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    discontinuing constant text[] := ARRAY['status', 'discontinued_reason', 'discontinued_by',
                                           'discontinued_at', 'updated_at', 'version'];
BEGIN
    IF TG_OP = 'INSERT' THEN
        RETURN NEW;
    END IF;
    IF OLD.status = 'discontinued' THEN
        RAISE EXCEPTION 'A discontinued protocol cannot be changed or removed.';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF to_jsonb(NEW) - discontinuing <> to_jsonb(OLD) - discontinuing THEN
        RAISE EXCEPTION 'A protocol is only ever discontinued; its patient and author stay.';
    END IF;
    RETURN NEW;
END $$
"""

_INTERACTION_REVIEW_FUNCTION = _signed_row_guard(
    "ketadesk_guard_interaction_review",
    "A signed interaction review cannot be changed or removed; run a new review.",
    "An interaction review is signed only in the name of the physician signing it.",
)

# A decision belongs to its review: none is added to, changed on or removed from a signed one.
_REVIEW_DECISION_FUNCTION = """
CREATE OR REPLACE FUNCTION ketadesk_guard_review_decision() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF (TG_OP <> 'INSERT' AND EXISTS (
            SELECT 1 FROM interaction_reviews WHERE id = OLD.review_id AND status = 'signed'))
       OR (TG_OP <> 'DELETE' AND EXISTS (
            SELECT 1 FROM interaction_reviews WHERE id = NEW.review_id AND status = 'signed'))
    THEN
        RAISE EXCEPTION 'The decisions of a signed interaction review cannot be changed; '
            'run a new review.';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$
"""

# Issued -> void with a reason, by the user voiding it, nothing else; never removed. The one
# step before: the hash of the just-inserted row is stored (it covers the row's id).
_PRESCRIPTION_FUNCTION = """
CREATE OR REPLACE FUNCTION ketadesk_guard_prescription() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    voiding constant text[] := ARRAY['status', 'void_reason', 'voided_by', 'voided_at',
                                     'updated_at', 'version'];
    sealing constant text[] := ARRAY['content_hash', 'updated_at', 'version'];
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.prescriber IS DISTINCT FROM session_user AND NOT ketadesk_is_owner() THEN
            RAISE EXCEPTION 'A prescription is issued only in the name of the physician '
                'issuing it.';
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'An issued prescription is never removed; void it with a reason.';
    END IF;
    IF OLD.status = 'void' THEN
        RAISE EXCEPTION 'A voided prescription cannot be changed.';
    END IF;
    -- Issuing stores the row, then its content hash (which covers the row's id), once.
    IF OLD.content_hash = '' AND NEW.status = 'issued' AND NEW.content_hash <> ''
       AND to_jsonb(NEW) - sealing = to_jsonb(OLD) - sealing THEN
        RETURN NEW;
    END IF;
    IF NEW.status <> 'void' OR to_jsonb(NEW) - voiding <> to_jsonb(OLD) - voiding THEN
        RAISE EXCEPTION 'An issued prescription cannot be changed; void it with a reason and '
            'issue a new one.';
    END IF;
    IF NEW.voided_by IS DISTINCT FROM session_user OR NEW.voided_at IS NULL THEN
        RAISE EXCEPTION 'A prescription is voided in the name of the user voiding it.';
    END IF;
    RETURN NEW;
END $$
"""

# A physician's acknowledgement of an item-9 answer is signed over the form and its answers:
# once acknowledged, the form is kept as it was read.
_QUESTIONNAIRE_FUNCTION = """
CREATE OR REPLACE FUNCTION ketadesk_guard_questionnaire_response() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM safety_alert_acks WHERE response_id = OLD.id) THEN
        RAISE EXCEPTION 'A questionnaire whose item-9 alert a physician acknowledged cannot '
            'be changed or removed.';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$
"""

# (table, trigger function, the function's body) for the tables with allowed transitions.
GUARDED_TABLES = (
    ("protocol_versions", "ketadesk_guard_protocol_version", _PROTOCOL_VERSION_FUNCTION),
    ("patient_protocols", "ketadesk_guard_patient_protocol", _PATIENT_PROTOCOL_FUNCTION),
    ("interaction_reviews", "ketadesk_guard_interaction_review", _INTERACTION_REVIEW_FUNCTION),
    ("review_decisions", "ketadesk_guard_review_decision", _REVIEW_DECISION_FUNCTION),
    ("prescriptions", "ketadesk_guard_prescription", _PRESCRIPTION_FUNCTION),
    ("questionnaire_responses", "ketadesk_guard_questionnaire_response",
     _QUESTIONNAIRE_FUNCTION),
)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def signed_record_statements(existing_tables: set[str]) -> list[str]:
    """The trigger functions and triggers for the tables that exist (run as the owner)."""
    statements = [_IS_OWNER_FUNCTION, _FROZEN_FUNCTION, _OWN_NAME_FUNCTION]
    for table, (column, message) in SIGNER_COLUMNS.items():
        if table in existing_tables:
            statements.append(
                f"CREATE OR REPLACE TRIGGER {table}_signer BEFORE INSERT ON {_quoted(table)} "
                f"FOR EACH ROW EXECUTE FUNCTION "
                f"ketadesk_signed_in_own_name({_literal(column)}, {_literal(message)})"
            )
    for table, message in FROZEN_TABLES.items():
        if table in existing_tables:
            statements.append(
                f"CREATE OR REPLACE TRIGGER {table}_frozen BEFORE UPDATE OR DELETE ON "
                f"{_quoted(table)} FOR EACH ROW EXECUTE FUNCTION "
                f"ketadesk_refuse_frozen_change({_literal(message)})"
            )
    for table, function, body in GUARDED_TABLES:
        if table not in existing_tables:
            continue
        statements += [
            body,
            f"CREATE OR REPLACE TRIGGER {table}_signed BEFORE INSERT OR UPDATE OR DELETE ON "
            f"{_quoted(table)} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()",
        ]
    return statements


def apply_signed_record_guards(connection: Any) -> None:
    """Freeze signed records, on a SQLAlchemy connection of the schema's owner."""
    from sqlalchemy import inspect

    existing = set(inspect(connection).get_table_names())
    # Straight to psycopg without parameters, so '%' in the function bodies is no placeholder.
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        for statement in signed_record_statements(existing):
            cursor.execute(statement)
    finally:
        cursor.close()

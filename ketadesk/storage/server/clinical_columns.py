"""What only a physician may write on the tables the front desk writes too, on a server.

Admins hold INSERT and UPDATE on the patient-reported tables (``practice_grants``), because
they record demographics, reported medications, questionnaires and home doses. Some columns
and rows of those tables are clinical (``ketadesk.core.permissions``): verifying a medication
or stopping a verified one (VERIFY_MEDICATION), a patient's treatment status and pregnancy
(EDIT_CLINICAL), acknowledging a dose alert, and the item-9 alert of a questionnaire, which must
reach the physician. These triggers refuse them to a user who is not in the physician group,
with SQLSTATE 42501 as a missing grant would, so an admin with ``psql`` gets no further than the
app lets them. Physicians and the schema's owner are not limited here.
"""

from __future__ import annotations

from typing import Any

from ketadesk.core.questionnaires import available_instruments, load_instrument
from ketadesk.storage.server.practice_roles import PHYSICIAN_GROUP

_IS_PHYSICIAN = f"pg_has_role(session_user, '{PHYSICIAN_GROUP}', 'MEMBER')"


def _function(name: str, body: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF {_IS_PHYSICIAN} THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
{body}
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$
"""


def _refuse(condition: str, message: str) -> str:
    escaped = message.replace("'", "''")
    return (
        f"    IF {condition} THEN\n"
        f"        RAISE EXCEPTION '{escaped}' USING ERRCODE = 'insufficient_privilege';\n"
        "    END IF;\n"
    )


_MEDICATION_BODY = (
    _refuse(
        "TG_OP <> 'INSERT' AND OLD.source = 'verified'",
        "Only physicians may change or stop a verified medication.",
    )
    + _refuse(
        "TG_OP <> 'DELETE' AND (NEW.source <> 'patient_reported' "
        "OR NEW.verified_by IS NOT NULL OR NEW.verified_at IS NOT NULL)",
        "Only physicians may mark medications verified.",
    )
)

_PATIENT_BODY = (
    _refuse("TG_OP = 'DELETE'", "Only physicians may remove a patient's chart.")
    + _refuse(
        "TG_OP = 'INSERT' AND (NEW.status <> 'screening' OR NEW.pregnant)",
        "A new patient starts in screening; only physicians set the treatment status or "
        "pregnancy.",
    )
    + _refuse(
        "TG_OP = 'UPDATE' AND (NEW.status IS DISTINCT FROM OLD.status "
        "OR NEW.pregnant IS DISTINCT FROM OLD.pregnant)",
        "Only physicians may change a patient's treatment status or pregnancy.",
    )
)

_DOSE_ALERT_BODY = _refuse(
    "TG_OP <> 'INSERT'",
    "Only physicians may acknowledge or remove a home-dose safety alert.",
) + _refuse(
    "TG_OP = 'INSERT' AND (NEW.acknowledged_by IS NOT NULL OR NEW.acknowledged_at IS NOT NULL)",
    "Only physicians may acknowledge a home-dose safety alert.",
)


def _safety_answered(instrument_id: str, number: int, at_or_above: int) -> str:
    """SQL true when the stored answers reach an instrument's safety item alert."""
    key = instrument_id.replace("'", "''")
    return (
        f"(NEW.instrument = '{key}' AND "
        f"coalesce((NEW.answers_json::jsonb ->> {number - 1})::integer, -1) >= {at_or_above})"
    )


def _questionnaire_body() -> str:
    """Front-desk forms are entered, never changed; a safety answer always raises its alert
    (the rule read from the instruments' own data files)."""
    alerts = []
    for name in available_instruments():
        instrument = load_instrument(name)
        if instrument.safety_item is not None:
            item = instrument.safety_item
            alerts.append(_safety_answered(instrument.id, item.number, item.alert_at_or_above))
    body = _refuse(
        "TG_OP <> 'INSERT'", "Only physicians may change or remove a recorded questionnaire."
    )
    if alerts:
        body += _refuse(
            f"TG_OP = 'INSERT' AND NOT NEW.safety_alert AND ({' OR '.join(alerts)})",
            "A questionnaire whose safety item was answered is stored with its alert open.",
        )
    return body


def _pdmp_body() -> str:
    return _refuse(
        "TG_OP <> 'DELETE' AND NEW.checked_by_role <> 'admin'",
        "A look-up entered by the front desk is recorded as made by a designee.",
    )


def _guarded() -> tuple[tuple[str, str, str], ...]:
    """(table, trigger function, the function's checks) for each table."""
    return (
        ("patient_medications", "ketadesk_admin_medication", _MEDICATION_BODY),
        ("patients", "ketadesk_admin_patient", _PATIENT_BODY),
        ("dose_breach_alerts", "ketadesk_admin_dose_alert", _DOSE_ALERT_BODY),
        ("questionnaire_responses", "ketadesk_admin_questionnaire", _questionnaire_body()),
        ("pdmp_checks", "ketadesk_admin_pdmp_check", _pdmp_body()),
    )


CLINICAL_COLUMN_TABLES = tuple(table for table, _, _ in _guarded())


def clinical_column_statements(existing_tables: set[str]) -> list[str]:
    """The trigger functions and triggers for the tables that exist (run as the owner)."""
    statements = []
    for table, function, body in _guarded():
        if table in existing_tables:
            statements += [
                _function(function, body),
                f"CREATE OR REPLACE TRIGGER {table}_clinical BEFORE INSERT OR UPDATE OR DELETE "
                f'ON "{table}" FOR EACH ROW EXECUTE FUNCTION {function}()',
            ]
    return statements


def apply_clinical_column_guards(connection: Any) -> None:
    """Keep physicians' columns to physicians, on a SQLAlchemy connection of the owner."""
    from sqlalchemy import inspect

    existing = set(inspect(connection).get_table_names())
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        for statement in clinical_column_statements(existing):
            cursor.execute(statement)
    finally:
        cursor.close()

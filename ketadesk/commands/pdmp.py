"""``pdmp record``: record a PDMP look-up (or why it could not be done), headless.

Physicians and admins (as the physician's designee) may record look-ups.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from ketadesk.commands._common import new_command, open_database_as
from ketadesk.core.errors import UserFacingError


def register(subparsers: Any) -> None:
    parser = new_command(subparsers, "pdmp", help="prescription drug monitoring look-ups",
                         handler=_needs_action)
    actions = parser.add_subparsers(dest="pdmp_action", metavar="ACTION")
    p = new_command(actions, "record", help="record a PDMP look-up for a patient",
                    handler=_record, needs_login=True)
    p.add_argument("--patient", required=True, metavar="MRN", help="the patient's MRN")
    p.add_argument("--state", required=True, choices=("FL", "NJ"),
                   help="whose system was consulted")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--result", metavar="TEXT",
                      help="the result in the practice's own words (no PDMP data)")
    what.add_argument("--not-checked-reason", metavar="TEXT",
                      help="why the system could not be consulted")
    p.add_argument("--at", metavar="DATETIME",
                   help="when it was consulted (YYYY-MM-DDTHH:MM, local time; default now)")


def _needs_action(args: argparse.Namespace) -> int:
    print("ketadesk: choose an action: record (see 'python -m ketadesk pdmp --help')")
    return 2


def parse_moment(text: str | None) -> datetime | None:
    """An ISO date and time; without a time zone it is this computer's local time."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserFacingError(
            f"'{text}' is not a date and time; write it as YYYY-MM-DDTHH:MM."
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time
    return moment.astimezone(UTC)


def _record(args: argparse.Namespace) -> int:
    from ketadesk.storage.compliance.pdmp_checks import record_pdmp_check
    from ketadesk.storage.outcomes.outcomes import patient_id_for_mrn

    at = parse_moment(args.at)
    database, actor = open_database_as(args)
    try:
        with database.session() as session:
            check = record_pdmp_check(
                session, actor, patient_id_for_mrn(session, args.patient), state=args.state,
                result=args.result, not_checked_reason=args.not_checked_reason, checked_at=at,
            )
    finally:
        database.close()
    how = "consulted" if check.consulted else "not consulted (reason recorded)"
    who = " as designee" if check.is_designee else ""
    print(f"PDMP look-up {check.id} recorded{who}: {check.state} {how} at "
          f"{check.checked_at.astimezone():%Y-%m-%d %H:%M}")
    return 0

"""``checkin add``: record a check-in and the blood pressure taken at it (headless)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from ketadesk.commands._common import new_command, open_database_as, print_json
from ketadesk.core.checkins import Adherence, CheckInMode
from ketadesk.core.errors import UserFacingError


def register(subparsers: Any) -> None:
    checkin = subparsers.add_parser(
        "checkin", help="record check-ins", description="record check-ins"
    )
    actions = checkin.add_subparsers(dest="checkin_command", metavar="ACTION", required=True)
    add = new_command(
        actions,
        "add",
        help="record a check-in with blood pressure (mmHg) and heart rate (beats/min)",
        handler=_checkin_add,
        needs_login=True,
    )
    add.add_argument("--patient", required=True, metavar="MRN", help="the patient's MRN")
    add.add_argument("--systolic", required=True, type=int, metavar="MMHG")
    add.add_argument("--diastolic", required=True, type=int, metavar="MMHG")
    add.add_argument("--heart-rate", type=int, metavar="BPM")
    add.add_argument("--note", default="", metavar="TEXT", help="the check-in's notes")
    add.add_argument(
        "--at",
        metavar="DATETIME",
        help="when it happened, e.g. 2026-03-04T14:30 (local time unless an offset is given; "
        "default: now)",
    )
    add.add_argument(
        "--mode",
        default=CheckInMode.HOME_VISIT.value,
        choices=[m.value for m in CheckInMode],
        help="how the check-in was done (default: home_visit)",
    )
    add.add_argument(
        "--adherence",
        default=Adherence.NOT_ASSESSED.value,
        choices=[a.value for a in Adherence],
        help="how the medicine has been taken (default: not_assessed)",
    )
    add.add_argument("--json", action="store_true", help="print the saved check-in as JSON")


def parse_when(text: str | None, now: datetime) -> datetime:
    """An aware datetime from ``--at`` (ISO 8601; a time without an offset is local time)."""
    if text is None:
        return now
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserFacingError(
            f"--at {text[:40]!r} is not a date and time KetaDesk can read; write it as "
            "YYYY-MM-DDTHH:MM (for example 2026-03-04T14:30)."
        ) from None
    if value.tzinfo is None:
        value = value.astimezone()  # the computer's own time zone
    return value.astimezone(UTC)


def _checkin_add(args: argparse.Namespace) -> int:
    from ketadesk.core.checkins import CheckInDraft
    from ketadesk.storage.outcomes.outcomes import patient_id_for_mrn, record_checkin
    from ketadesk.storage.patients.patients import add_vitals

    now = datetime.now(UTC)
    when = parse_when(args.at, now)
    database, actor = open_database_as(args)
    try:
        with database.session() as session:
            patient_id = patient_id_for_mrn(session, args.patient)
            # The check-in's own date is the clinic's calendar day it happened on.
            local_day = when.astimezone().date()
            vitals = add_vitals(
                session,
                actor,
                patient_id,
                measured_at=when,
                systolic=args.systolic,
                diastolic=args.diastolic,
                heart_rate=args.heart_rate,
                now=now,
            )
            record = record_checkin(
                session,
                actor,
                patient_id,
                CheckInDraft(
                    date=local_day,
                    mode=args.mode,
                    recorded_by=actor.full_name or actor.user_name,
                    symptoms=(),
                    adherence=args.adherence,
                    notes=args.note,
                ),
                today=now.astimezone().date(),
            )
    finally:
        database.close()
    if args.json:
        print_json({"checkin": record.to_json(), "vitals_id": vitals.id})
    else:
        print(
            f"Check-in recorded for {args.patient.upper()} on {record.checked_on.isoformat()}: "
            f"BP {args.systolic}/{args.diastolic} mmHg"
            + (f", heart rate {args.heart_rate}/min" if args.heart_rate is not None else "")
        )
    return 0

"""``roster`` (list and search patients) and ``import-patients`` (roster CSV) commands."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ketadesk.commands._common import new_command, open_database_as, print_json
from ketadesk.core.errors import UserFacingError

MAX_LISTED = 100_000


def register(subparsers: Any) -> None:
    roster = new_command(
        subparsers,
        "roster",
        help="list patients, optionally searching by name, MRN, phone or date of birth",
        handler=_roster,
        needs_login=True,
    )
    roster.add_argument("--search", default="", metavar="TEXT")
    roster.add_argument("--state", choices=("FL", "NJ"))
    roster.add_argument("--status", choices=("screening", "active", "paused", "discharged"))
    roster.add_argument(
        "--only",
        action="append",
        default=[],
        choices=("review-stale", "checkin-overdue", "safety-alert"),
        help="show only patients with a stale interaction review, an overdue check-in or an "
        "open PHQ-9 item 9 alert (repeatable; all must hold)",
    )
    roster.add_argument("--limit", type=int, default=MAX_LISTED, metavar="N")
    roster.add_argument("--json", action="store_true", help="print a JSON list")

    importer = new_command(
        subparsers,
        "import-patients",
        help="import patients from a roster CSV (all or nothing; see --skip-invalid)",
        handler=_import,
        needs_login=True,
    )
    importer.add_argument("file", metavar="FILE.csv")
    importer.add_argument("--dry-run", action="store_true", help="check the file, write nothing")
    importer.add_argument(
        "--skip-invalid", action="store_true", help="import the valid rows, skip the bad ones"
    )
    importer.add_argument(
        "--import-duplicates",
        action="store_true",
        help="also import rows that match a patient already stored (same name and birth date)",
    )
    importer.add_argument("--json", action="store_true", help="print the report as JSON")


def _roster(args: argparse.Namespace) -> int:
    from ketadesk.core import audit_actions
    from ketadesk.storage.roster import roster_columns as rc
    from ketadesk.storage.roster.roster_query import RosterFilter, fetch_roster_page
    from ketadesk.storage.security.audit_log import record_event

    rc.install_roster_columns()
    flags = {
        "review-stale": rc.REVIEW_STALE,
        "checkin-overdue": rc.CHECKIN_OVERDUE,
        "safety-alert": rc.SAFETY_ALERT_OPEN,
    }

    if not 1 <= args.limit <= MAX_LISTED:
        raise UserFacingError(f"--limit must be a whole number from 1 to {MAX_LISTED:,}.")
    database, actor = open_database_as(args)
    try:
        from ketadesk.core.permissions import Permission, require

        require(actor, Permission.VIEW_ROSTER, "list patients")
        roster_filter = RosterFilter(
            search_text=args.search,
            states=frozenset({args.state} if args.state else ()),
            statuses=frozenset({args.status} if args.status else ()),
            flags=frozenset(flags[name] for name in args.only),
        )
        with database.session() as session:
            rows = fetch_roster_page(session, roster_filter, limit=args.limit)
            # A read of many patients is audited with its count only (never the search text).
            record_event(
                session,
                actor,
                audit_actions.ROSTER_LISTED,
                detail=f"{len(rows)} patients listed ({'json' if args.json else 'text'})",
            )
    finally:
        database.close()
    if args.json:
        print_json(
            [
                {
                    "patient_id": r.patient_id,
                    "mrn": r.mrn,
                    "first_name": r.first_name,
                    "middle_name": r.middle_name,
                    "last_name": r.last_name,
                    "dob": r.dob.isoformat(),
                    "sex": r.sex,
                    "phone": r.phone,
                    "state": r.state,
                    "county": r.county,
                    "status": r.status,
                    "last_visit_on": r.last_visit_on.isoformat() if r.last_visit_on else None,
                    "review_status": r.extras[rc.REVIEW_STATUS],
                    "protocol_status": r.extras[rc.PROTOCOL_STATUS],
                    "next_checkin_due": _iso(r.extras[rc.NEXT_CHECKIN_DUE]),
                    "overdue": bool(r.extras[rc.OVERDUE_DAYS]),
                    "days_overdue": r.extras[rc.OVERDUE_DAYS] or 0,
                    "safety_alert_open": bool(r.extras[rc.SAFETY_ALERT]),
                }
                for r in rows
            ]
        )
    else:
        for r in rows:
            due = r.extras[rc.NEXT_CHECKIN_DUE]
            due_text = "not monitored" if due is None else f"due {due.isoformat()}"
            if r.extras[rc.OVERDUE_DAYS]:
                due_text = f"OVERDUE ({due_text})"
            alert = "  SAFETY ALERT" if r.extras[rc.SAFETY_ALERT] else ""
            print(
                f"{r.mrn}  {r.last_name}, {r.first_name}  {r.dob.isoformat()}  "
                f"{r.state}  {r.status}  review {r.extras[rc.REVIEW_STATUS]}  "
                f"protocol {r.extras[rc.PROTOCOL_STATUS]}  {due_text}{alert}"
            )
        print(f"{len(rows)} patient{'s' if len(rows) != 1 else ''}", file=sys.stderr)
    return 0


def _iso(value: object) -> str | None:
    return value.isoformat() if isinstance(value, date) else None


def _import(args: argparse.Namespace) -> int:
    from ketadesk.core.csv_encoding import MAX_FILE_BYTES
    from ketadesk.core.patient_csv import read_patient_csv
    from ketadesk.storage.patients.patient_import import import_patients

    path = Path(args.file).expanduser()
    try:
        with open(path, "rb") as handle:  # one byte past the cap is enough to refuse it
            data = handle.read(MAX_FILE_BYTES + 1)
    except IsADirectoryError:
        raise UserFacingError(f"{path.name} is a folder, not a CSV file.") from None
    except FileNotFoundError:
        raise UserFacingError(f"There is no file {path.name} there.") from None
    except OSError:
        raise UserFacingError(f"The file {path.name} could not be read.") from None
    plan = read_patient_csv(data, today=datetime.now(UTC).astimezone().date())
    report: dict[str, Any] = {
        "rows": plan.data_row_count,
        "valid_rows": len(plan.rows),
        "problems": [
            {"row": p.row_number, "field": p.field, "column": p.column, "problem": p.message}
            for p in plan.problems
        ],
        "duplicates_in_file": [list(g.row_numbers) for g in plan.duplicates_in_file],
        "notices": list(plan.notices),
    }
    for problem in plan.problems:
        print(problem.describe(), file=sys.stderr)
    for group in plan.duplicates_in_file:
        rows = ", ".join(str(n) for n in group.row_numbers)
        print(f"Possible duplicates within the file: rows {rows}", file=sys.stderr)
    for notice in plan.notices:
        print(f"Note: {notice}", file=sys.stderr)
    if plan.has_problems and not args.skip_invalid:
        bad = len(plan.invalid_row_numbers)
        report["imported"] = 0
        if args.json:
            print_json(report)
        print(
            f"{bad} of {plan.data_row_count} rows have problems; nothing was imported. Fix them, "
            "or use --skip-invalid to import only the valid rows.",
            file=sys.stderr,
        )
        return 1

    database, actor = open_database_as(args)
    try:
        with database.session() as session:
            result = import_patients(
                session,
                actor,
                plan,
                skip_invalid=args.skip_invalid,
                import_duplicates=args.import_duplicates,
                dry_run=args.dry_run,
            )
            if args.dry_run:
                session.rollback()
    finally:
        database.close()
    for duplicate in result.duplicates_of_existing:
        action = "imported anyway" if args.import_duplicates else "skipped"
        print(
            f"Row {duplicate.row_number}: possible duplicate of {duplicate.existing_mrn} "
            f"(same name and date of birth); {action}.",
            file=sys.stderr,
        )
    verb = "Would import" if args.dry_run else "Imported"
    print(
        f"{verb} {result.imported} patient{'s' if result.imported != 1 else ''}"
        + (f"; skipped {len(result.skipped_invalid_rows)} invalid row(s)" if plan.problems else "")
        + (
            f"; skipped {len(result.skipped_duplicate_rows)} possible duplicate(s)"
            if result.skipped_duplicate_rows
            else ""
        )
        + ".",
        file=sys.stderr,
    )
    report.update(
        imported=0 if args.dry_run else result.imported,
        would_import=result.imported,
        dry_run=args.dry_run,
        duplicates_of_existing=[
            {"row": d.row_number, "existing_mrn": d.existing_mrn}
            for d in result.duplicates_of_existing
        ],
        new_mrns=list(result.new_mrns) if not args.dry_run else [],
    )
    if args.json:
        print_json(report)
    return 0

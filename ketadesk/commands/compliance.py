"""``compliance``: the compliance worklist (PDMP look-ups due, consents, licences and
registrations, lapsed refills), headless."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from ketadesk.commands._common import new_command, open_database_as, print_json


def register(subparsers: Any) -> None:
    parser = new_command(subparsers, "compliance",
                         help="list what is due: PDMP look-ups, consents, licences, refills",
                         handler=_compliance, needs_login=True)
    parser.add_argument("--json", action="store_true", help="print JSON")


def _compliance(args: argparse.Namespace) -> int:
    from ketadesk.storage.compliance.compliance_worklist import (
        audit_worklist_viewed,
        compliance_worklist,
        worklist_json,
    )

    today = datetime.now(UTC).astimezone().date()
    database, actor = open_database_as(args)
    try:
        with database.session() as session:
            items = compliance_worklist(session, today)
            audit_worklist_viewed(session, actor, items)
    finally:
        database.close()
    if args.json:
        print_json(worklist_json(items))
        return 0
    if not items:
        print("Nothing is due.")
    for item in items:
        who = item.mrn or item.user_name or ""
        print(f"{item.kind}\t{who}\t{item.message}")
    return 0

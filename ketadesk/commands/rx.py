"""``rx issue | list``: ketamine prescriptions, headless.

``rx issue`` runs the whole checklist; when any check fails it issues nothing, names every
failed check (one line each on stderr, or the checklist as JSON with ``--json``) and exits 4.
Warnings are acknowledged with ``--acknowledge CODE`` (repeatable); the acknowledgement is
stored with the prescription and audited.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from ketadesk.commands._common import new_command, open_database_as, print_json


def register(subparsers: Any) -> None:
    parser = new_command(subparsers, "rx", help="ketamine prescriptions", handler=_needs_action)
    actions = parser.add_subparsers(dest="rx_action", metavar="ACTION")
    p = new_command(actions, "issue", help="issue a prescription from the signed protocol",
                    handler=_issue, needs_login=True)
    p.add_argument("--patient", required=True, metavar="MRN")
    p.add_argument("--quantity", required=True, type=float, metavar="N",
                   help="number of units (troches, tablets, mL ...)")
    p.add_argument("--refills", required=True, type=int, metavar="N")
    p.add_argument("--pharmacy", default="", metavar="TEXT", help="the compounding pharmacy")
    p.add_argument("--remote", action="store_true", help="the visit was by telemedicine")
    p.add_argument("--acknowledge", action="append", default=[], metavar="CODE",
                   help="acknowledge a warning of the checklist (e.g. pdmp); repeatable")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = new_command(actions, "list", help="list a patient's prescriptions", handler=_list,
                    needs_login=True)
    p.add_argument("--patient", required=True, metavar="MRN")
    p.add_argument("--json", action="store_true", help="print JSON")


def _needs_action(args: argparse.Namespace) -> int:
    print("ketadesk: choose an action: issue or list (see 'python -m ketadesk rx --help')")
    return 2


def _issue(args: argparse.Namespace) -> int:
    from ketadesk.storage.compliance.compliance_records import (
        check_result_json,
        prescription_json,
    )
    from ketadesk.storage.compliance.prescriptions import (
        PrescriptionRefused,
        PrescriptionRequest,
        issue_prescription_recording_refusal,
        prescription_checklist_for,
    )
    from ketadesk.storage.outcomes.outcomes import patient_id_for_mrn

    request = PrescriptionRequest(quantity=args.quantity, refills=args.refills,
                                  pharmacy=args.pharmacy, remote=args.remote,
                                  issue_at=datetime.now(UTC))
    database, actor = open_database_as(args)
    try:
        with database.session() as session:
            patient_id = patient_id_for_mrn(session, args.patient)
        try:
            rx = issue_prescription_recording_refusal(
                database.session, actor, patient_id, request, acknowledged=args.acknowledge
            )
        except PrescriptionRefused as refused:
            with database.session() as session:
                checklist = prescription_checklist_for(session, actor, patient_id, request)
            if args.json:
                print_json({"issued": False, "failed": refused.reasons,
                            "checklist": [check_result_json(r) for r in checklist.results]})
            print("ketadesk: the prescription was not issued; failed checks:", file=sys.stderr)
            for reason in refused.reasons:
                print(f"  - {reason}", file=sys.stderr)
            return refused.exit_code
    finally:
        database.close()
    if args.json:
        print_json({"issued": True, "prescription": prescription_json(rx)})
    else:
        print(f"Prescription {rx.id} issued {rx.issued_on.isoformat()}: {rx.product}, "
              f"{rx.strength_text}, quantity {rx.quantity:g}, {rx.refills} refills")
    return 0


def _list(args: argparse.Namespace) -> int:
    from ketadesk.core import audit_actions
    from ketadesk.storage.compliance.compliance_records import prescription_json
    from ketadesk.storage.compliance.prescriptions import prescriptions_of
    from ketadesk.storage.outcomes.outcomes import patient_id_for_mrn
    from ketadesk.storage.security.audit_log import record_event

    database, actor = open_database_as(args)
    try:
        with database.session() as session:
            patient_id = patient_id_for_mrn(session, args.patient)
            found = prescriptions_of(session, patient_id)
            record_event(session, actor, audit_actions.PATIENT_VIEWED, patient_id=patient_id,
                         detail="prescriptions (command line)")
    finally:
        database.close()
    if args.json:
        print_json([prescription_json(rx) for rx in found])
        return 0
    if not found:
        print("No prescriptions.")
    for rx in found:
        state = "VOID" if rx.is_void else f"{rx.refills_used}/{rx.refills} refills used"
        print(f"{rx.id}\t{rx.issued_on.isoformat()}\t{rx.product}, {rx.strength_text}, "
              f"quantity {rx.quantity:g}\t{state}")
    return 0



"""``outcomes``: a patient's questionnaires, check-ins and monitoring due dates (headless)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from ketadesk.commands._common import new_command, open_database_as, print_json


def register(subparsers: Any) -> None:
    parser = new_command(
        subparsers,
        "outcomes",
        help="show a patient's PHQ-9/GAD-7 questionnaires, check-ins and what is due",
        handler=_outcomes,
        needs_login=True,
    )
    parser.add_argument("--patient", required=True, metavar="MRN", help="the patient's MRN")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _outcomes(args: argparse.Namespace) -> int:
    from ketadesk.core import audit_actions
    from ketadesk.storage.outcomes.outcomes import (
        outcomes_json,
        patient_id_for_mrn,
        patient_outcomes,
    )
    from ketadesk.storage.patients.patients import list_vitals
    from ketadesk.storage.security.audit_log import record_event

    database, actor = open_database_as(args)
    try:
        with database.session() as session:
            patient_id = patient_id_for_mrn(session, args.patient)
            result = patient_outcomes(session, patient_id, datetime.now(UTC).date())
            vitals = list_vitals(session, patient_id)
            record_event(
                session,
                actor,
                audit_actions.PATIENT_VIEWED,
                patient_id=patient_id,
                detail="outcomes (command line)",
            )
    finally:
        database.close()
    data = outcomes_json(result)
    data["vitals"] = [
        {
            "measured_at": v.measured_at.isoformat(),
            "systolic": v.systolic,
            "diastolic": v.diastolic,
            "heart_rate": v.heart_rate,
            "weight_kg": v.weight_kg,
            "entered_by": v.entered_by,
        }
        for v in vitals
    ]
    if args.json:
        print_json(data)
        return 0
    _print_text(data)
    return 0


def _print_text(data: dict[str, Any]) -> None:
    print("Questionnaires")
    if not data["questionnaires"]:
        print("  none")
    for form in data["questionnaires"]:
        score = (
            f"{form['total']} ({form['band']})" if form["complete"] else "INCOMPLETE (not scored)"
        )
        alert = ""
        if form["safety_alert"]:
            who = form["acknowledged_by"]
            alert = (
                f"  item 9 alert acknowledged by {who}"
                if who
                else "  URGENT: item 9 alert NOT acknowledged (988 Suicide & Crisis Lifeline)"
            )
        print(f"  {form['date']}  {form['instrument']:<6} {score}{alert}")
    from ketadesk.core.checkins import LABELS

    print("Check-ins")
    if not data["checkins"]:
        print("  none")
    for checkin in data["checkins"]:
        mode = LABELS.get(checkin["mode"], checkin["mode"])
        adherence = LABELS.get(checkin["adherence"], checkin["adherence"])
        print(f"  {checkin['date']}  {mode:<11} {adherence}")
    print("Vitals")
    if not data["vitals"]:
        print("  none")
    for v in data["vitals"]:
        bp = f"{v['systolic']}/{v['diastolic']} mmHg" if v["systolic"] is not None else ""
        hr = f"  HR {v['heart_rate']}/min" if v["heart_rate"] is not None else ""
        print(f"  {v['measured_at'][:16]}  {bp}{hr}")
    monitoring = data["monitoring"]
    print(
        f"Monitoring ({monitoring['source']}): check-in every "
        f"{monitoring['checkin_every_days']} days, questionnaires every "
        f"{monitoring['questionnaire_every_weeks']} weeks"
    )
    if monitoring["next_checkin_due"] is None:
        print("  Not in active treatment: nothing is due.")
        return
    print(f"  Next check-in due {monitoring['next_checkin_due']}")
    for name, when in monitoring["questionnaires_due"].items():
        print(f"  Next {name} due {when}")
    if monitoring["overdue"]:
        print("  OVERDUE: " + ", ".join(monitoring["overdue"]))

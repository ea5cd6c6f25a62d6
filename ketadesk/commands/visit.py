"""``visit``: check patients out to a visit pack, return it, review conflicts, revoke a pack."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ketadesk.commands._common import (
    ca_certificate,
    database_path,
    is_server_database,
    new_command,
    open_database_as,
    password_reader,
    print_json,
    workstation_certificate,
)
from ketadesk.core.errors import UserFacingError

if TYPE_CHECKING:
    from ketadesk.core.permissions import Actor
    from ketadesk.storage.visits.visit_practice import VisitPractice


def register(subparsers: Any) -> None:
    visit = subparsers.add_parser(
        "visit",
        help="home visits offline: visit packs of a few patients",
        description="home visits offline: visit packs of a few patients",
    )
    actions = visit.add_subparsers(dest="visit_command", metavar="ACTION", required=True)
    checkout = new_command(
        actions,
        "checkout",
        help="write a visit pack of these patients (it opens with your password, and with "
        "the physician's if you name one; stdin: your password, then the physician's)",
        handler=_checkout,
        needs_login=True,
    )
    checkout.add_argument("--patients", required=True, metavar="MRN[,MRN...]")
    checkout.add_argument("--out", required=True, metavar="PACK", help="the pack file to write")
    checkout.add_argument(
        "--days", type=int, metavar="N", help="lease length (default: the practice setting)"
    )
    checkout.add_argument(
        "--physician",
        metavar="NAME",
        help="a physician whose own password also opens the pack (asked after yours; with "
        "--password-stdin, the second line)",
    )
    checkout.add_argument("--json", action="store_true")

    back = new_command(
        actions,
        "return",
        help="bring a visit pack's records back into the practice (stdin: your practice "
        "password, then the pack's if it differs)",
        handler=_return,
        needs_login=True,
    )
    back.add_argument("pack", metavar="PACK", help="the visit pack file")
    back.add_argument("--dry-run", action="store_true", help="report only; change nothing")
    back.add_argument(
        "--release-revoked",
        action="store_true",
        help="physicians: apply a revoked pack after reviewing it",
    )
    back.add_argument("--json", action="store_true")

    conflicts = new_command(
        actions,
        "conflicts",
        help="list records a returned pack left for a physician",
        handler=_conflicts,
        needs_login=True,
    )
    conflicts.add_argument("--all", action="store_true", help="resolved ones too")
    conflicts.add_argument("--json", action="store_true")

    resolve = new_command(
        actions,
        "resolve",
        help="physicians: settle one conflict (keep office, keep visit, or chosen fields)",
        handler=_resolve,
        needs_login=True,
    )
    resolve.add_argument("conflict", type=int, metavar="ID")
    resolve.add_argument("--keep", required=True, choices=("office", "visit", "fields"))
    resolve.add_argument(
        "--fields", default="", metavar="F1,F2", help="with --keep fields: the visit's fields"
    )
    resolve.add_argument("--json", action="store_true")

    revoke = new_command(
        actions,
        "revoke",
        help="revoke a pack (a lost laptop): its return is held for a physician",
        handler=_revoke,
        needs_login=True,
    )
    revoke.add_argument("pack_id", metavar="PACK-ID")

    leases = new_command(
        actions, "leases", help="list visit packs and their leases", handler=_leases,
        needs_login=True,
    )
    leases.add_argument("--json", action="store_true")


def _checkout(args: argparse.Namespace) -> int:
    from ketadesk.storage.visits.visit_checkout import check_out_patients

    reader = password_reader(args)
    password = reader.read(f"Password for {args.as_user}: ")
    physician_password = (
        None if args.physician is None
        else reader.read(f"Password for {args.physician} (also opens the pack): ")
    )
    database, actor = _log_in(args, password)
    try:
        result = check_out_patients(
            database,
            actor,
            args.patients.split(","),
            Path(args.out).expanduser(),
            password,
            days=args.days,
            physician=args.physician,
            physician_password=physician_password,
        )
    finally:
        database.close()
    if args.json:
        print_json(
            {
                "pack_id": result.pack_id,
                "path": str(result.path),
                "patients": result.patient_count,
                "records": result.record_count,
                "expires_at": result.expires_at.isoformat(),
                "opens_for": [args.as_user, *([result.physician] if result.physician else [])],
            }
        )
    else:
        until = result.expires_at.astimezone().strftime("%Y-%m-%d %H:%M")
        opens = "your password" + (
            f" and {result.physician}'s" if result.physician else ""
        )
        print(
            f"Visit pack {result.pack_id} written to {result.path}: {result.patient_count} "
            f"patients, {result.record_count} records, lease until {until}. It opens with "
            f"{opens}."
        )
    return 0


def _log_in(args: argparse.Namespace, password: str) -> tuple[VisitPractice, Actor]:
    """The practice the pack leaves from or comes back to, open as ``--as`` with the password
    already read (the pack opens with it too): a practice file, or a practice server logged in
    to as that user's own role."""
    if is_server_database(args):
        from ketadesk.storage.server.server_engine import parse_server_url
        from ketadesk.storage.server.server_practice import ServerPractice

        server = ServerPractice.log_in(
            parse_server_url(str(args.db)), ca_certificate(args), args.as_user, password,
            workstation_certificate(args),
        )
        return server, server.actor
    from ketadesk.storage.security.database import PracticeDatabase

    database, outcome = PracticeDatabase.unlock(database_path(args), args.as_user, password)
    return database, outcome.actor


def _return(args: argparse.Namespace) -> int:
    from ketadesk.storage.visits.visit_return import return_visit_pack

    reader = password_reader(args)
    password = reader.read(f"Password for {args.as_user}: ")
    database, actor = _log_in(args, password)
    try:
        try:
            report = return_visit_pack(
                database, actor, Path(args.pack).expanduser(), password,
                dry_run=args.dry_run, release_revoked=args.release_revoked,
            )
        except UserFacingError as error:
            if "did not open" not in error.message or not args.password_stdin:
                raise
            pack_password = reader.read("Password for the visit pack: ")
            report = return_visit_pack(
                database, actor, Path(args.pack).expanduser(), pack_password,
                dry_run=args.dry_run, release_revoked=args.release_revoked,
            )
    finally:
        database.close()
    if args.json:
        print_json(report.to_json())
        return 0
    _print_report(report)
    return 0


def _print_report(report: Any) -> None:
    prefix = "Dry run (nothing was changed): " if report.dry_run else ""
    if report.held_for_review:
        when = (
            "an unknown time" if report.revoked_at is None
            else report.revoked_at.astimezone().strftime("%Y-%m-%d %H:%M")
        )
        print(
            f"{prefix}Visit pack {report.pack_id} was revoked by {report.revoked_by} on {when}: "
            "nothing was applied; it waits for a physician's review ('visit conflicts'), who "
            "may release it with 'visit return --release-revoked'."
        )
        return
    added = sum(report.added.values())
    applied = sum(report.applied.values())
    removed = sum(report.deleted.values())
    print(
        f"{prefix}Visit pack {report.pack_id}: {added} new records added, {applied} edits "
        f"applied, {removed} removals applied, {report.unchanged} already in the practice, "
        f"{len(report.conflicts)} waiting for a physician, {report.audit_events_appended} "
        "audit events appended."
    )
    for item in report.conflicts:
        print(f"  waits: {item.words}")
    for item in report.refused:
        print(f"  refused: {item.words}")
    if report.returned_after_lease:
        print("  (returned after its lease ended)")


def _conflicts(args: argparse.Namespace) -> int:
    from ketadesk.storage.visits.visit_conflicts import list_conflicts

    database, _actor = open_database_as(args)
    try:
        with database.session() as session:
            found = list_conflicts(session, include_resolved=args.all)
    finally:
        database.close()
    if args.json:
        print_json([c.to_json() for c in found])
        return 0
    if not found:
        print("No conflicts wait for a physician.")
    for c in found:
        who = c.patient_mrn or "-"
        fields = ", ".join(c.differing_fields)
        state = "" if c.status == "open" else f" [{c.resolution} by {c.resolved_by}]"
        print(f"{c.id:>5}  {who:<12} {c.label}: {c.reason_words}{state}")
        if fields:
            print(f"       differs in: {fields}")
    return 0


def _resolve(args: argparse.Namespace) -> int:
    from ketadesk.storage.visits.visit_conflicts import resolve_conflict

    database, actor = open_database_as(args)
    fields = [f.strip() for f in args.fields.split(",") if f.strip()]
    try:
        with database.session() as session:
            info = resolve_conflict(session, actor, args.conflict, args.keep, fields)
    finally:
        database.close()
    if args.json:
        print_json(info.to_json())
    else:
        print(f"Conflict {info.id} resolved: kept {args.keep}.")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from ketadesk.storage.visits.visit_leases import revoke_lease

    database, actor = open_database_as(args)
    try:
        with database.session() as session:
            info = revoke_lease(session, actor, args.pack_id)
    finally:
        database.close()
    print(
        f"Visit pack {info.pack_id} revoked: if it is ever returned, its records wait for a "
        "physician's review instead of being applied."
    )
    return 0


def _leases(args: argparse.Namespace) -> int:
    from ketadesk.storage.visits.visit_leases import list_leases

    database, _actor = open_database_as(args)
    try:
        with database.session() as session:
            leases = list_leases(session)
    finally:
        database.close()
    now = datetime.now(UTC)
    if args.json:
        print_json([lease.to_json(now) for lease in leases])
        return 0
    if not leases:
        print("No visit packs were checked out.")
    for lease in leases:
        until = lease.expires_at.astimezone().strftime("%Y-%m-%d %H:%M")
        print(
            f"{lease.pack_id}  {lease.status_at(now):<8} {len(lease.patient_ids)} patients  "
            f"by {lease.checked_out_by} until {until}"
        )
    return 0

"""``export-fhir``, ``import-fhir`` and ``export-practice``: records in and out as FHIR R4."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ketadesk.commands._common import new_command, open_database_as, print_json
from ketadesk.core.errors import UserFacingError

EXPORT_WORKERS = 2  # the practice laptops have two cores or more


def register(subparsers: Any) -> None:
    export = new_command(
        subparsers,
        "export-fhir",
        help="export patients' records as FHIR R4 (US Core) bundles, one JSON file per patient",
        handler=_export,
        needs_login=True,
    )
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--patient", metavar="MRN", help="one patient, by MRN")
    which.add_argument("--all", action="store_true", help="every patient in the practice")
    export.add_argument(
        "--out", required=True, metavar="PATH",
        help="with --patient: the file to write (or a folder); with --all: a folder",
    )

    importer = new_command(
        subparsers,
        "import-fhir",
        help="import patients' records from FHIR R4 files: a Bundle or NDJSON, or a folder of "
        "them (all or nothing)",
        handler=_import,
        needs_login=True,
    )
    importer.add_argument("files", nargs="+", metavar="FILE")
    importer.add_argument("--dry-run", action="store_true", help="check the files, write nothing")
    importer.add_argument(
        "--import-duplicates", action="store_true",
        help="also import patients who match one already stored (same name and birth date) "
        "as new patients; nothing is ever merged",
    )
    importer.add_argument("--json", action="store_true", help="print the report as JSON")

    practice = new_command(
        subparsers,
        "export-practice",
        help="export the whole practice (FHIR bundles, signed plans, audit trail, users, "
        "manifest) into an empty folder; for users who manage users",
        handler=_export_practice,
        needs_login=True,
    )
    practice.add_argument("--out", required=True, metavar="DIR")


def _export(args: argparse.Namespace) -> int:
    from ketadesk.storage.interchange.fhir_bundle_files import bundle_file_name
    from ketadesk.storage.interchange.fhir_export import (
        all_patient_ids,
        export_patient_bundles,
        export_patient_file,
        patient_id_for_mrn,
    )

    out = Path(args.out).expanduser()
    database, actor = open_database_as(args)
    try:
        with database.session() as session:
            if args.all:
                if out.exists() and not out.is_dir():
                    raise UserFacingError(f"{out.name} is a file; --all needs a folder.")

                stop = threading.Event()

                def progress(done: int, total: int) -> bool:
                    if done % 1000 == 0 or done == total:
                        print(f"{done} of {total} patients", file=sys.stderr)
                    return not stop.is_set()

                with _ctrl_c_stops(stop):
                    summary = export_patient_bundles(
                        session, actor, all_patient_ids(session), out, progress=progress,
                        workers=EXPORT_WORKERS,
                    )
            else:
                patient_id = patient_id_for_mrn(session, args.patient)
                target = out
                if out.is_dir():
                    target = out / bundle_file_name(args.patient.strip().upper())
                summary = export_patient_file(
                    session, actor, patient_id, target,
                    protected_databases=[] if database.path is None else [database.path],
                )
    finally:
        database.close()
    noun = "patient" if summary.patients == 1 else "patients"
    where = summary.files[0] if len(summary.files) == 1 and not args.all else out
    print(f"Exported {summary.patients} {noun} ({summary.resources} resources) to {where}",
          file=sys.stderr)
    if summary.stopped:
        print("Stopped before the end (Ctrl-C); every file written is complete.",
              file=sys.stderr)
        return 130
    return 0


@contextmanager
def _ctrl_c_stops(stop: threading.Event) -> Iterator[None]:
    """The first Ctrl-C stops the export after the files under way (counted and audited);
    a second one interrupts at once."""

    def handle(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("Finishing the files being written, then stopping (Ctrl-C again to interrupt)…",
              file=sys.stderr)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _import(args: argparse.Namespace) -> int:
    from ketadesk.core.fhir_reading import load_fhir_paths, read_fhir_files
    from ketadesk.storage.interchange.fhir_import import import_fhir_reading

    reading = read_fhir_files(
        load_fhir_paths([Path(n) for n in args.files]), today=datetime.now(UTC).astimezone().date()
    )
    for problem in reading.problems:
        print(f"Not readable: {problem.describe()}", file=sys.stderr)
    reasons = Counter(p.reason for p in reading.skipped)
    for reason, count in reasons.most_common():
        print(f"{count} resource{'s' if count != 1 else ''} {reason}", file=sys.stderr)
    report: dict[str, Any] = {
        "resources": reading.resource_count,
        "patients_in_file": len(reading.patients),
        "problems": [{"where": p.where, "problem": p.reason} for p in reading.problems],
        "skipped": [{"where": p.where, "reason": p.reason} for p in reading.skipped],
        "skipped_by_kind": reading.skipped_by_kind(),
        "prescriptions_not_imported": reading.prescriptions_not_imported,
    }
    if reading.has_problems:
        report["imported"] = 0
        if args.json:
            print_json(report)
        count = len(reading.problems)
        print(
            f"{count} resource{'s' if count != 1 else ''} could not be read; nothing was "
            "imported. Fix them in the other system and export again.",
            file=sys.stderr,
        )
        return 1
    database, actor = open_database_as(args)
    try:
        with database.session() as session:
            result = import_fhir_reading(
                session, actor, reading, import_duplicates=args.import_duplicates,
                dry_run=args.dry_run,
            )
            if args.dry_run:
                session.rollback()
    finally:
        database.close()
    for duplicate in result.duplicates:
        like = (f"patient {duplicate.existing_mrn}" if duplicate.existing_mrn
                else "an earlier patient in the file")
        action = "imported anyway as a new patient" if args.import_duplicates else "skipped"
        print(f"{duplicate.where}: possible duplicate of {like} (same name and date of birth); "
              f"{action}.", file=sys.stderr)
    for line in result.not_checked:
        print(f"{line.mrn}: {line.kind} \"{line.entered_text}\" was not recognised; it shows "
              "as not checked in the interaction review.", file=sys.stderr)
    verb = "Would import" if args.dry_run else "Imported"
    print(
        f"{verb} {result.patients} patient{'s' if result.patients != 1 else ''} with "
        f"{result.medications} medications, {result.conditions} conditions, {result.vitals} "
        f"sets of vitals and {result.questionnaires} questionnaires.",
        file=sys.stderr,
    )
    if result.prescriptions_not_imported:
        count = result.prescriptions_not_imported
        print(f"{count} prescription{'s' if count != 1 else ''} not imported: prescriptions "
              "are issued and signed in KetaDesk.", file=sys.stderr)
    report.update(
        imported=0 if args.dry_run else result.patients,
        would_import=result.patients,
        dry_run=args.dry_run,
        medications=result.medications,
        conditions=result.conditions,
        vitals=result.vitals,
        questionnaires=result.questionnaires,
        duplicates=[{"where": d.where, "existing_mrn": d.existing_mrn} for d in result.duplicates],
        not_checked=[{"mrn": n.mrn, "kind": n.kind, "entered_text": n.entered_text}
                     for n in result.not_checked],
        new_mrns=[] if args.dry_run else list(result.new_mrns),
    )
    if args.json:
        print_json(report)
    return 0


def _export_practice(args: argparse.Namespace) -> int:
    from ketadesk.storage.interchange.practice_export import export_practice

    out = Path(args.out).expanduser()
    database, actor = open_database_as(args)
    try:
        summary = export_practice(database, actor, out)
    finally:
        database.close()
    print(
        f"Exported {summary.patients} patients ({summary.resources} FHIR resources), "
        f"{summary.plans} signed plans, {summary.audit_events} audit events and "
        f"{summary.users} users to {out}; the SHA-256 of every file is in "
        f"{summary.manifest.name}.",
        file=sys.stderr,
    )
    return 0

"""``export-plan`` and ``verify-plan``: treatment-plan PDFs, headless.

``export-plan --patient MRN --out FILE`` writes one plan (exit 1 with a message when the patient
has no signed protocol); ``export-plan --all --out FOLDER`` writes one plan per patient with a
signed active protocol, with a progress line when stderr is a terminal. A patient whose
interaction review is out of date or missing is refused (named by MRN) or, with ``--all``,
skipped and listed, unless a physician passes ``--allow-stale-review`` (audited).
``--encrypt`` reads the PDF password as the next line of standard input (asked twice on a
terminal).

``verify-plan FILE.pdf`` says whether a printed plan matches a signed protocol version and exits
1 when it does not; for an encrypted plan the PDF password is the next line of standard input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ketadesk.commands._common import new_command, open_database_as, password_reader, print_json
from ketadesk.core.errors import UserFacingError

MAX_PLAN_PDF_BYTES = 50 * 1024 * 1024


def register(subparsers: Any) -> None:
    export = new_command(
        subparsers,
        "export-plan",
        help="export treatment-plan PDFs of signed protocols (one patient or all)",
        handler=_export_plan,
        needs_login=True,
    )
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--patient", metavar="MRN", help="export this patient's plan")
    which.add_argument(
        "--all", action="store_true", help="export every patient with a signed active protocol"
    )
    export.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="the PDF file (with --patient) or the folder (with --all; created if missing)",
    )
    export.add_argument(
        "--encrypt",
        action="store_true",
        help="protect the PDFs with a password (AES-256), read as the next stdin line",
    )
    export.add_argument(
        "--pattern",
        default=None,
        metavar="PATTERN",
        help="file names in a folder (default '{mrn}_plan_v{version}.pdf', no patient name; "
        "fields: last_name, first_name, mrn, version, plan_id, date)",
    )
    export.add_argument(
        "--overwrite", action="store_true", help="replace files that already exist"
    )
    export.add_argument(
        "--workers", type=int, default=2, metavar="N", help="processes used with --all"
    )
    export.add_argument(
        "--allow-stale-review",
        action="store_true",
        help="physicians only: export even when the interaction review is out of date or "
        "missing (recorded in the audit log); without it those patients are refused (--patient) "
        "or skipped and listed (--all)",
    )

    verify = new_command(
        subparsers,
        "verify-plan",
        help="check that a printed treatment plan matches a signed protocol version",
        handler=_verify_plan,
        needs_login=True,
    )
    verify.add_argument("file", metavar="FILE.pdf", help="the plan PDF to check")
    verify.add_argument("--json", action="store_true", help="print JSON instead of text")


def _pdf_password(args: argparse.Namespace) -> str | None:
    if not args.encrypt:
        return None
    password = password_reader(args).read_new("PDF password: ")
    if not password:
        raise UserFacingError("The PDF password cannot be empty.")
    return password


class _Progress:
    """A "\\r"-updated progress line on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if self.enabled:
            sys.stderr.write(f"\rExporting plans: {done} of {total}")
            sys.stderr.flush()
            self.shown = True

    def finish(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def _export_plan(args: argparse.Namespace) -> int:
    from ketadesk.core.mrn import normalise_mrn
    from ketadesk.storage.outcomes.outcomes import patient_id_for_mrn
    from ketadesk.storage.plans import plan_export
    from ketadesk.storage.plans.plan_review_gate import plan_review_problem, refusal_text
    from ketadesk.storage.protocols.protocol_versions import (
        active_signed_protocol,
    )

    if args.workers < 1:
        raise UserFacingError("--workers must be at least 1.")
    pattern = args.pattern or plan_export.DEFAULT_FILE_PATTERN
    plan_export.check_file_pattern(pattern)
    database, actor = open_database_as(args)
    try:
        password = _pdf_password(args)
        out = Path(args.out).expanduser()
        if args.all:
            out.mkdir(parents=True, exist_ok=True)
            return _export_all(database, actor, out, pattern, password, args)
        allow_stale = bool(args.allow_stale_review)
        with database.session() as session:
            patient_id = patient_id_for_mrn(session, args.patient)
            if active_signed_protocol(session, patient_id) is None:
                raise UserFacingError(plan_export.NO_SIGNED_PROTOCOL)
            problem = plan_review_problem(session, patient_id)
            if problem is not None and not allow_stale:
                raise UserFacingError(refusal_text(normalise_mrn(args.patient), problem))
        if out.is_dir():
            summary = plan_export.export_plans(
                database, actor, [patient_id], out, pattern=pattern, password=password,
                workers=1, overwrite=args.overwrite, allow_stale_review=allow_stale,
            )
            if not summary.written:
                reasons = [o.reason for o in summary.outcomes if o.reason]
                raise UserFacingError(reasons[0] if reasons else "The plan was not written.")
            outcome = summary.written[0]
        else:
            if not out.parent.is_dir():
                raise UserFacingError("The folder for the plan file does not exist.")
            outcome = plan_export.export_plan_to_file(
                database, actor, patient_id, out, password=password, overwrite=args.overwrite,
                allow_stale_review=allow_stale,
            )
    finally:
        database.close()
    print(f"Wrote {outcome.path} (version {outcome.version}; content hash {outcome.content_hash})")
    return 0


def _export_all(
    database: Any, actor: Any, folder: Path, pattern: str, password: str | None,
    args: argparse.Namespace,
) -> int:
    from ketadesk.storage.plans import plan_export

    progress = _Progress()
    try:
        summary = plan_export.export_plans(
            database, actor, None, folder, pattern=pattern, password=password,
            workers=args.workers, progress=progress, overwrite=args.overwrite,
            allow_stale_review=bool(args.allow_stale_review),
        )
    finally:
        progress.finish()
    for outcome in summary.outcomes:
        if outcome.is_written:
            print(f"wrote {outcome.path}")
        else:
            print(f"{outcome.status} {outcome.mrn or outcome.patient_id}: {outcome.reason}")
    print(summary.describe())
    return 1 if summary.failed or summary.cancelled else 0


def _verify_plan(args: argparse.Namespace) -> int:
    from ketadesk.storage.plans import plan_export

    path = Path(args.file).expanduser()
    try:
        with open(path, "rb") as handle:  # size-checked while reading: never a whole device
            pdf = handle.read(MAX_PLAN_PDF_BYTES + 1)
        if len(pdf) > MAX_PLAN_PDF_BYTES:
            raise UserFacingError("That file is far larger than any KetaDesk plan; not checked.")
    except OSError as error:
        raise UserFacingError(
            f"The plan file could not be read ({error.strerror or type(error).__name__})."
        ) from None
    database, actor = open_database_as(args)
    try:
        password = None
        if plan_export.pdf_needs_password(pdf):
            password = password_reader(args).read("PDF password: ")
        with database.session() as session:
            result = plan_export.verify_plan_file(session, pdf, password, actor=actor)
    finally:
        database.close()
    if args.json:
        print_json(
            {
                "matches": result.matches,
                "message": result.message,
                "plan_id": result.plan_id,
                "version": result.version,
                "content_hash": result.content_hash,
                "mrn": result.mrn,
                "signed_by": result.signed_by,
                "signed_at": result.signed_at.isoformat() if result.signed_at else None,
                "is_current": result.is_current,
            }
        )
    elif result.matches:
        signed = f" by {result.signed_by}" if result.signed_by else ""
        when = f" on {result.signed_at:%Y-%m-%d %H:%M} UTC" if result.signed_at else ""
        print(f"MATCHES: {result.message}")
        print(f"Patient MRN {result.mrn}; signed{signed}{when}.")
    else:
        print(f"DOES NOT MATCH: {result.message}")
    return 0 if result.matches else 1

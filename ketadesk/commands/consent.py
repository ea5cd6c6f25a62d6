"""``consent templates | record | form``: informed consent, headless.

``templates`` lists every version of the practice's consent text (the version id first);
the shipped example is installed as version 1 when the practice has none.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ketadesk.commands._common import new_command, open_database_as
from ketadesk.core.errors import UserFacingError


def register(subparsers: Any) -> None:
    parser = new_command(subparsers, "consent", help="informed consent templates and records",
                         handler=_needs_action)
    actions = parser.add_subparsers(dest="consent_action", metavar="ACTION")
    new_command(actions, "templates", help="list the consent template versions",
                handler=_templates, needs_login=True)
    p = new_command(actions, "record", help="record a patient's signed consent",
                    handler=_record, needs_login=True)
    p.add_argument("--patient", required=True, metavar="MRN")
    p.add_argument("--template", required=True, type=int, metavar="VERSION",
                   help="the version id from 'consent templates'")
    p.add_argument("--signed-on", required=True, metavar="DATE", help="YYYY-MM-DD")
    p.add_argument("--on-screen", action="store_true",
                   help="signed on screen (default: on paper)")
    p = new_command(actions, "form", help="print the consent form for a patient as a PDF",
                    handler=_form, needs_login=True)
    p.add_argument("--patient", required=True, metavar="MRN")
    p.add_argument("--out", required=True, metavar="FILE.pdf")


def _needs_action(args: argparse.Namespace) -> int:
    print("ketadesk: choose an action: templates, record or form "
          "(see 'python -m ketadesk consent --help')")
    return 2


def _today() -> date:
    return datetime.now(UTC).astimezone().date()


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UserFacingError(f"'{text}' is not a date; write it as YYYY-MM-DD.") from None


def _templates(args: argparse.Namespace) -> int:
    from ketadesk.storage.compliance.consent import consent_templates, ensure_consent_template

    database, actor = open_database_as(args)
    try:
        with database.session() as session:
            ensure_consent_template(session, actor)
            templates = consent_templates(session)
    finally:
        database.close()
    if not templates:  # on a practice server, until a physician has opened the consents
        print("ketadesk: the practice has no consent text yet; a physician adds the example "
              "text by opening the consents ('consent templates').", file=sys.stderr)
    for t in templates:
        example = "  EXAMPLE - confirm with counsel" if t.is_example else ""
        print(f"{t.id}\tversion {t.version}\t{t.added_at.astimezone():%Y-%m-%d}\t{t.title}"
              f"{example}")
    return 0


def _record(args: argparse.Namespace) -> int:
    from ketadesk.storage.compliance.consent import record_consent
    from ketadesk.storage.outcomes.outcomes import patient_id_for_mrn

    signed_on = parse_day(args.signed_on)
    database, actor = open_database_as(args)
    try:
        with database.session() as session:
            record = record_consent(
                session, actor, patient_id_for_mrn(session, args.patient),
                template_id=args.template, signed_on=signed_on,
                method="on_screen" if args.on_screen else "paper", today=_today(),
            )
    finally:
        database.close()
    print(f"Consent {record.id} recorded: version {record.template_version}, signed "
          f"{record.signed_on.isoformat()} ({record.method.replace('_', ' ')})")
    return 0


def _form(args: argparse.Namespace) -> int:
    from ketadesk.core.private_files import write_private_bytes
    from ketadesk.storage.compliance.compliance_printouts import consent_form_pdf
    from ketadesk.storage.outcomes.outcomes import patient_id_for_mrn

    out = Path(args.out).expanduser()
    if out.is_dir():
        raise UserFacingError(f"{out} is a folder; --out needs a file name ending in .pdf.")
    database, actor = open_database_as(args)
    try:
        with database.session() as session:
            data = consent_form_pdf(session, actor, patient_id_for_mrn(session, args.patient),
                                    today=_today())
    finally:
        database.close()
    write_private_bytes(out, data)
    print(f"Consent form written to {out}")
    return 0

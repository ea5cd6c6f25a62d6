"""``python -m ketadesk protocol ...``: templates, dosing calendars and validation, headless.

None of these needs a patient database. Practice limits come from the shipped defaults (which
leave every ketamine limit empty, so ``check`` reports them as not set), from ``--limits FILE``,
or from the practice database when ``--as NAME`` logs in to it (``--db PATH`` or the default
database); logging in also adds the practice's own templates.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ketadesk.commands._common import new_command, open_database_as, print_json
from ketadesk.core.dosing_calendar import dosing_calendar, units_per_30_days
from ketadesk.core.errors import UserFacingError
from ketadesk.core.practice_limits import (
    PracticeLimits,
    default_practice_limits,
    load_practice_limits,
)
from ketadesk.core.protocol_templates import (
    ProtocolTemplate,
    builtin_templates,
    find_template,
    import_templates,
)
from ketadesk.core.protocol_validation import blocks_signing, validate_protocol
from ketadesk.core.protocols import (
    KIND_LABELS,
    ROUTE_LABELS,
    Protocol,
    Route,
    TitrationLadder,
    WeightReading,
    highest_dose_mg,
    ladder_doses_mg,
    number_text,
    sig_text,
)


def register(subparsers: Any) -> None:
    parser = new_command(
        subparsers, "protocol", help="protocol templates, dosing calendars and checks",
        handler=_needs_action,
    )
    actions = parser.add_subparsers(dest="protocol_action", metavar="ACTION")

    p = new_command(actions, "templates", help="list the protocol templates",
                    handler=_templates)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_templates_file(p)

    p = new_command(actions, "schedule", help="print the dosing calendar of a template",
                    handler=_schedule)
    _add_template_options(p)
    p.add_argument("--start", required=True, type=_date, metavar="YYYY-MM-DD",
                   help="date of the first session")
    p.add_argument("--weeks", type=int, metavar="N",
                   help="weeks to show (default: the template's duration)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = new_command(actions, "check", help="validate a template against the practice limits "
                    "(exit 1 when an error blocks signing)", handler=_check)
    _add_template_options(p)
    p.add_argument("--dose-mg", type=float, metavar="D",
                   help="check one fixed dose of D mg instead of the template's ladder")
    p.add_argument("--route", choices=[r.value for r in Route],
                   help="check as if given by this route")
    p.add_argument("--weight-date", type=_date, metavar="YYYY-MM-DD",
                   help="date the weight was measured (default: today)")
    p.add_argument("--today", type=_date, metavar="YYYY-MM-DD", help=argparse.SUPPRESS)
    p.add_argument("--limits", type=Path, metavar="FILE",
                   help="practice limits JSON file (default: the practice database with "
                   "--as, else the shipped defaults)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _add_templates_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--templates-file", type=Path, metavar="FILE",
                        help="also use the practice templates in this JSON file")
    parser.add_argument("--as", dest="as_user", metavar="NAME",
                        help="log in to the practice database (--db) to use its practice "
                        "limits and templates")
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input")


@dataclass(frozen=True)
class _PracticeData:
    """What the practice database adds: its limits and its own templates."""

    limits: PracticeLimits
    templates: tuple[ProtocolTemplate, ...]


def _practice_data(args: argparse.Namespace, *, needed: bool) -> _PracticeData | None:
    """Read limits and templates from the database when ``--as`` is given. ``--db`` without
    ``--as`` is refused where the database would change the answer (``needed``), and noted
    otherwise, so nothing in the database is silently left unread."""
    if getattr(args, "as_user", None) is None:
        if getattr(args, "db", None):
            if needed:
                raise UserFacingError(
                    "To use the practice limits in --db, also give --as NAME (and "
                    "--password-stdin to pipe the password in)."
                )
            print("ketadesk: note: --db was given without --as, so the practice's own "
                  "templates in it were not read.", file=sys.stderr)
        return None
    if getattr(args, "limits", None) is not None:
        raise UserFacingError("Use either --limits FILE or the practice database (--as), not both.")
    from ketadesk.storage.practice.practice_limits_store import (
        get_practice_limits,
    )
    from ketadesk.storage.practice.practice_templates import (
        practice_templates,
    )

    database, _actor = open_database_as(args)
    try:
        with database.session() as session:
            return _PracticeData(get_practice_limits(session), practice_templates(session))
    finally:
        database.close()


def _add_template_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--template", required=True, metavar="NAME", help="template name")
    parser.add_argument("--weight-kg", required=True, type=float, metavar="W",
                        help="patient weight in kg")
    _add_templates_file(parser)


#: Dates a protocol may start on or be weighed on: a calendar from them must fit in a year.
_EARLIEST, _LATEST = date(1900, 1, 1), date(2199, 12, 31)


def _date(text: str) -> date:
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None
    if not _EARLIEST <= value <= _LATEST:
        raise argparse.ArgumentTypeError(
            f"'{text}' is outside {_EARLIEST.year}-{_LATEST.year}; check the year"
        )
    return value


def _needs_action(args: argparse.Namespace) -> int:
    print("ketadesk: choose an action: templates, schedule or check "
          "(see 'python -m ketadesk protocol --help')", file=sys.stderr)
    return 2


def _all_templates(
    args: argparse.Namespace, practice: _PracticeData | None = None
) -> list[ProtocolTemplate]:
    templates = list(builtin_templates())
    if practice is not None:
        templates.extend(practice.templates)
    path: Path | None = getattr(args, "templates_file", None)
    if path is not None:
        templates.extend(import_templates(path))
    return templates


def _chosen(args: argparse.Namespace, practice: _PracticeData | None) -> ProtocolTemplate:
    from ketadesk.core.interaction_check import VITAL_RANGES

    low, high, _unit = VITAL_RANGES["weight_kg"]  # the same bounds as check-interactions
    if not low <= args.weight_kg <= high:
        raise UserFacingError(
            f"The weight must be between {low:g} and {high:g} kg (got {args.weight_kg:g})."
        )
    return find_template(args.template, _all_templates(args, practice))


def _templates(args: argparse.Namespace) -> int:
    templates = _all_templates(args, _practice_data(args, needed=False))
    today = datetime.now(UTC).date()
    rows = [
        {
            "name": t.name,
            "built_in": t.built_in,
            "example_values": t.example_values,
            "kind": t.protocol.kind.value,
            "route": t.protocol.route.value,
            "indication": t.protocol.indication.value,
            "doses_mg": list(ladder_doses_mg(t.protocol.ladder)),
            "max_dose_mg": t.protocol.ladder.max_dose_mg,
            "duration_weeks": t.protocol.duration_weeks,
            "units_per_30_days": units_per_30_days(t.protocol, today),
            "sig": sig_text(t.protocol),
            "description": t.description,
            "sources": [{"title": s.title, "url": s.url} for s in t.sources],
        }
        for t in templates
    ]
    if args.json:
        print_json(rows)
        return 0
    for t in templates:
        p = t.protocol
        flag = "  [EXAMPLE VALUES - confirm before use]" if t.example_values else ""
        origin = "built-in" if t.built_in else "practice"
        print(f"{t.name} ({origin}){flag}")
        print(f"  {KIND_LABELS[p.kind]}, {ROUTE_LABELS[p.route]}, {p.formulation}; doses "
              f"{', '.join(number_text(d) for d in ladder_doses_mg(p.ladder))} mg "
              f"(max {number_text(p.ladder.max_dose_mg)} mg), {p.duration_weeks} weeks")
    return 0


def _schedule(args: argparse.Namespace) -> int:
    template = _chosen(args, _practice_data(args, needed=False))
    sessions = dosing_calendar(template.protocol, args.start, args.weight_kg, args.weeks)
    if args.json:
        print_json(
            [
                {
                    "date": s.date.isoformat(),
                    "dose_mg": s.dose_mg,
                    "mg_per_kg": s.mg_per_kg,
                    "events": list(s.events),
                }
                for s in sessions
            ]
        )
        return 0
    if template.example_values:
        print("EXAMPLE VALUES: this template's doses are examples the practice must confirm.")
    print(f"{'#':>3}  {'date':10}  {'dose mg':>8}  {'mg/kg':>6}  {'phase':11}  events")
    for s in sessions:
        mgkg = f"{s.mg_per_kg:.2f}" if s.mg_per_kg is not None else "-"
        print(f"{s.number:>3}  {s.date.isoformat():10}  {number_text(s.dose_mg):>8}  "
              f"{mgkg:>6}  {s.phase:11}  {', '.join(s.events)}")
    return 0


def _checked_protocol(template: ProtocolTemplate, args: argparse.Namespace) -> Protocol:
    protocol = template.protocol
    if args.route is not None:
        protocol = replace(protocol, route=Route(args.route))
    if args.dose_mg is not None:
        protocol = replace(
            protocol,
            ladder=TitrationLadder(
                start_dose_mg=args.dose_mg,
                max_dose_mg=args.dose_mg,
                step_up_rule=protocol.ladder.step_up_rule,
                sessions_per_step=protocol.ladder.sessions_per_step,
            ),
            maintenance=replace(protocol.maintenance, dose_mg=None),
        )
    return protocol


def _check(args: argparse.Namespace) -> int:
    practice = _practice_data(args, needed=True)
    template = _chosen(args, practice)
    limits: PracticeLimits = (
        practice.limits if practice is not None
        else load_practice_limits(args.limits) if args.limits is not None
        else default_practice_limits()
    )
    today = args.today or datetime.now(UTC).date()
    weight = WeightReading(kg=args.weight_kg, measured_on=args.weight_date or today)
    protocol = _checked_protocol(template, args)
    messages = validate_protocol(protocol, limits, weight, today)
    blocked = blocks_signing(messages)
    if args.json:
        print_json(
            {
                "template": template.name,
                "highest_dose_mg": highest_dose_mg(protocol),
                "weight_kg": weight.kg,
                "weight_date": weight.measured_on.isoformat(),
                "blocks_signing": blocked,
                "messages": [
                    {"level": m.level, "code": m.code, "message": m.message, "field": m.field,
                     "source": m.source}
                    for m in messages
                ],
            }
        )
    else:
        top = highest_dose_mg(protocol)
        print(f"{template.name}: highest dose {number_text(top)} mg = "
              f"{number_text(round(top / weight.kg, 2))} mg/kg at {number_text(weight.kg)} kg "
              f"(weighed {weight.measured_on.isoformat()})")
        for m in messages:
            print(f"{m.level.upper():7}  {m.message}")
        if not messages:
            print("No problems found.")
        print("Signing is blocked until the errors are fixed." if blocked
              else "Nothing blocks signing." if not messages
              else "Nothing blocks signing; acknowledge the warnings.")
    return 1 if blocked else 0

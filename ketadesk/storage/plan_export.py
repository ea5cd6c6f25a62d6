"""Treatment plans from the database: build, export (single and batch), record, verify.

This module maps the chart onto :class:`~ketadesk.reports.plan_document.PlanDocument`: the
practice letterhead from the practice settings, the patient block, the prescriber from the
signing physician's user record, the signed protocol version (summary, dosing calendar from
``core/dosing_calendar``, monitoring) and the interaction review that version was signed over.

Only signed protocol versions become plans. A physician may also render a draft as a
watermarked preview, which is never recorded as a plan. Each exported plan of a signed version
is stored once by content hash (``SignedPlanContent``) with the document it was rendered from,
so :func:`verify_plan_file` can check a reprint even after the chart has changed. Every export,
preview and verification is written to the audit trail with ids, version numbers and hashes,
never names.

Rendering happens outside any database session: the batch is collected in one short session,
rendered on worker processes (``reports/plan_batch``), and recorded in a second session.
"""

from __future__ import annotations

import io
import json
import re
import string
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ketadesk.core import audit_actions
from ketadesk.core.dosing_calendar import (
    EVENT_BP_AFTER,
    EVENT_BP_BEFORE,
    EVENT_CHECK_IN,
    EVENT_GAD7,
    EVENT_PHQ9,
    EVENT_PHYSICIAN_REVIEW,
    EVENT_SITTER,
    CalendarSession,
    dosing_calendar,
    units_per_30_days,
)
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.core.protocols import (
    KIND_LABELS,
    Protocol,
    StepUpRule,
    frequency_text,
    indication_text,
    ladder_doses_mg,
    maintenance_dose_mg,
    monitoring_instructions,
    number_text,
    route_text,
    sig_text,
)
from ketadesk.models.interaction_reviews import InteractionReview
from ketadesk.models.patients import Patient
from ketadesk.models.plan_exports import SignedPlanContent
from ketadesk.models.practice import PracticeMeta
from ketadesk.models.protocols import PatientProtocol, ProtocolVersion
from ketadesk.models.users import User
from ketadesk.reports.plan_batch import JobStatus, PlanJob, PlanJobResult, render_plan_files
from ketadesk.reports.plan_document import (
    CalendarRow,
    MonitoringPlanText,
    PatientBlock,
    PlanDocument,
    PracticeInfo,
    PrescriberBlock,
    ProtocolSummary,
    ReviewFlag,
    ReviewSummary,
    plan_content_hash,
)
from ketadesk.storage.audit_log import record_event
from ketadesk.storage.protocols import (
    ProtocolVersionInfo,
    active_signed_protocol,
    active_signed_protocols,
    current_protocol,
)
from ketadesk.storage.settings_store import get_setting

if TYPE_CHECKING:
    from ketadesk.storage.database import PracticeDatabase

PLAN_TITLE = "Home ketamine treatment plan"
NO_SIGNED_PROTOCOL = (
    "This patient has no signed protocol; a plan can be exported only from a signed version."
)
NO_WEIGHT = (
    "The protocol version has no weight recorded, so the dose in mg/kg cannot be printed; "
    "record a weight and sign a new version."
)
CALENDAR_WEEKS_KEY = "plan_calendar_weeks"
DEFAULT_FILE_PATTERN = "{last_name}_{mrn}_plan_v{version}.pdf"
#: Fields a file-name pattern may use.
FILE_PATTERN_FIELDS = ("last_name", "first_name", "mrn", "version", "plan_id", "date")
_MAX_FILE_NAME = 150
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
_UNSAFE_IN_NAME = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')
_PLAN_ID = re.compile(r"KD-([0-9A-F]{6})-([0-9]+)")
_SQL_CHUNK = 900

#: Patient wording for the calendar's monitoring events (keys are core/dosing_calendar names).
_EVENT_WORDS: Mapping[str, str] = {
    EVENT_BP_BEFORE: "Blood pressure before the dose",
    EVENT_BP_AFTER: "Blood pressure after the dose",
    EVENT_SITTER: "Sitter with you",
    EVENT_PHQ9: "PHQ-9 questionnaire",
    EVENT_GAD7: "GAD-7 questionnaire",
    EVENT_CHECK_IN: "Check-in with the practice",
    EVENT_PHYSICIAN_REVIEW: "Physician review before the dose goes up",
}
EVENT_PROTOCOL_REVIEW = "Review visit with your physician"

_DECISION_WORDS: Mapping[str, str] = {
    "continue_with_monitoring": "Continue with monitoring",
    "adjust_protocol": "The ketamine protocol was adjusted",
    "hold_ketamine": "Hold ketamine",
    "ask_other_prescriber_to_change": "The other prescriber is asked to change the medicine",
}


# --------------------------------------------------------------------------- building


def plan_id_for(database_id: str, protocol_id: int) -> str:
    """Return the printed plan id of a protocol: ``KD-<6 hex of the database id>-<protocol id>``.

    The id names the course of treatment (versions are numbered separately) and carries no
    patient data; the database part tells a plan from another practice apart.
    """
    return f"KD-{database_id[:6].upper()}-{protocol_id:05d}"


def _database_id(session: Session) -> str:
    row = session.get(PracticeMeta, "database_id")
    return row.value if row is not None else "000000"


def _weeks_shown(session: Session) -> int:
    try:
        weeks = int(get_setting(session, CALENDAR_WEEKS_KEY))
    except (TypeError, ValueError):
        weeks = 4
    return max(1, weeks)


def _practice(session: Session) -> PracticeInfo:
    return PracticeInfo(
        name=str(get_setting(session, "practice_name") or "").strip() or "Practice name not set",
        address=str(get_setting(session, "practice_address") or "").strip()
        or "Practice address not set",
        phone=str(get_setting(session, "practice_phone") or "").strip() or "not set",
    )


def _full_name(patient: Patient) -> str:
    parts = (patient.first_name, patient.middle_name or "", patient.last_name)
    return " ".join(part.strip() for part in parts if part and part.strip())


def _patient_block(patient: Patient) -> PatientBlock:
    return PatientBlock(
        full_name=_full_name(patient),
        date_of_birth=patient.dob,
        mrn=patient.mrn,
        state=patient.state,
        sitter_name=patient.sitter_name or None,
        sitter_phone=patient.sitter_phone or None,
        emergency_contact_name=patient.emergency_contact_name or None,
        emergency_contact_phone=patient.emergency_contact_phone or None,
    )


def _prescriber(session: Session, user_name: str, fallback_name: str | None) -> PrescriberBlock:
    user = session.execute(select(User).where(User.user_name == user_name)).scalar_one_or_none()
    if user is None:
        return PrescriberBlock(
            full_name=fallback_name or user_name, npi="not recorded", licence_states=()
        )
    states = tuple(s for s in user.licence_states.split(",") if s)
    return PrescriberBlock(
        full_name=user.full_name, npi=user.npi or "not recorded", licence_states=states
    )


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _units(protocol: Protocol, count: float) -> str:
    unit = protocol.unit_name.strip() or "unit"
    if unit.lower() == "ml":
        return f"{number_text(count)} mL"
    plural = unit if count == 1 or unit.endswith("s") else unit + "s"
    return f"{number_text(count)} {plural}"


def _dose_words(protocol: Protocol, dose_mg: float) -> str:
    strength = protocol.strength_mg_per_unit
    units = f" ({_units(protocol, round(dose_mg / strength, 3))})" if strength > 0 else ""
    return f"{number_text(dose_mg)} mg{units}"


def titration_steps(protocol: Protocol) -> tuple[str, ...]:
    """Describe the ladder (doses in mg and units) and the maintenance phase, one line per step.

    Empty when the dose never changes (a one-dose ladder with no separate maintenance).
    """
    ladder = protocol.ladder
    doses = ladder_doses_mg(ladder)
    n = ladder.sessions_per_step
    sessions = f"{n} session{'s' if n != 1 else ''}"
    maintenance = maintenance_dose_mg(protocol)
    m_freq = protocol.maintenance.frequency
    if len(doses) == 1 and maintenance == doses[0] and m_freq is None:
        return ()
    lines = [f"Start at {_dose_words(protocol, doses[0])} for {sessions}."]
    gate = (
        "after a physician review"
        if ladder.step_up_rule is StepUpRule.AT_PHYSICIAN_REVIEW
        else "if the previous dose was tolerated"
    )
    for dose in doses[1:]:
        lines.append(f"Then {_dose_words(protocol, dose)} for {sessions}, {gate}.")
    if maintenance == doses[-1] and m_freq is None:
        lines[-1] = lines[-1][:-1] + "; then stay at this dose."
        return tuple(lines)
    tail = f"Then continue at {_dose_words(protocol, maintenance)}"
    if m_freq is not None:
        tail += f", {frequency_text(m_freq)}"
    lines.append(tail + ".")
    return tuple(lines)


def _summary(protocol: Protocol, version: ProtocolVersionInfo) -> ProtocolSummary:
    weight = version.weight
    if weight is None or weight.kg <= 0:
        raise UserFacingError(NO_WEIGHT)
    start = ladder_doses_mg(protocol.ladder)[0]
    duration = f"{protocol.duration_weeks} weeks from {version.start_date.isoformat()}"
    if protocol.review_date is not None:
        duration += f"; review with your physician by {protocol.review_date.isoformat()}"
    units = units_per_30_days(protocol, version.start_date)
    supply = _units(protocol, units)
    if protocol.supply.notes.strip():
        supply += f" ({protocol.supply.notes.strip()})"
    formulation = protocol.formulation.strip() or "compounded formulation"
    return ProtocolSummary(
        indication=indication_text(protocol),
        kind=KIND_LABELS[protocol.kind],
        route=_capitalised(route_text(protocol)),
        formulation=formulation,
        strength=f"{number_text(protocol.strength_mg_per_unit)} mg per "
        f"{protocol.unit_name.strip() or 'unit'}",
        dose_mg=start,
        mg_per_kg=round(start / weight.kg, 2),
        weight_kg=weight.kg,
        weight_date=weight.measured_on,
        frequency=_capitalised(frequency_text(protocol.frequency)),
        titration_steps=titration_steps(protocol),
        max_dose_mg=protocol.ladder.max_dose_mg,
        duration=duration,
        supply_per_30_days=supply,
        refills=protocol.supply.refills,
        sig=sig_text(protocol),
    )


def _event_words(protocol: Protocol, event: str) -> str:
    if event == EVENT_BP_AFTER and protocol.monitoring.bp_after_minutes:
        return f"Blood pressure {protocol.monitoring.bp_after_minutes} min after the dose"
    return _EVENT_WORDS.get(event, event)


def calendar_rows(
    protocol: Protocol, start: date, weight_kg: float | None
) -> tuple[CalendarRow, ...]:
    """The plan's calendar: every session of ``dosing_calendar`` (doses in mg, mg/kg) with its
    monitoring events in patient words, plus the protocol's review date as a monitoring-only
    day (or an event on that day's session) when it falls inside the calendar."""
    sessions: list[CalendarSession] = dosing_calendar(protocol, start, weight_kg)
    rows = [
        CalendarRow(
            day=s.date,
            dose_mg=s.dose_mg,
            mg_per_kg=s.mg_per_kg,
            events=tuple(_event_words(protocol, e) for e in s.events),
        )
        for s in sessions
    ]
    review = protocol.review_date
    end = start + timedelta(days=7 * protocol.duration_weeks)
    if review is not None and start <= review < end:
        same_day = [i for i, row in enumerate(rows) if row.day == review]
        if same_day:
            i = same_day[0]
            rows[i] = CalendarRow(
                rows[i].day, rows[i].dose_mg, rows[i].mg_per_kg,
                (*rows[i].events, EVENT_PROTOCOL_REVIEW),
            )
        else:
            rows.append(CalendarRow(review, None, None, (EVENT_PROTOCOL_REVIEW,)))
            rows.sort(key=lambda row: row.day)
    return tuple(rows)


def _every(count: int, unit: str) -> str:
    return f"every {unit}" if count == 1 else f"every {count} {unit}s"


def _monitoring(protocol: Protocol) -> MonitoringPlanText:
    mon = protocol.monitoring
    lines = list(monitoring_instructions(mon))
    if mon.phq9_every_weeks:
        lines.append(f"Complete the PHQ-9 questionnaire {_every(mon.phq9_every_weeks, 'week')}.")
    if mon.gad7_every_weeks:
        lines.append(f"Complete the GAD-7 questionnaire {_every(mon.gad7_every_weeks, 'week')}.")
    if mon.check_in_every_days:
        lines.append(f"Check in with the practice {_every(mon.check_in_every_days, 'day')}.")
    if protocol.review_date is not None:
        lines.append(f"Next review with your physician: {protocol.review_date.isoformat()}.")
    holds: list[str] = []
    sys_, dia = mon.hold_systolic_above_mmhg, mon.hold_diastolic_above_mmhg
    if sys_ is not None and dia is not None:
        holds.append(
            f"Blood pressure before the dose above {sys_}/{dia} mmHg (upper number above "
            f"{sys_} or lower number above {dia})"
        )
    elif sys_ is not None:
        holds.append(f"Upper blood pressure number before the dose above {sys_} mmHg")
    elif dia is not None:
        holds.append(f"Lower blood pressure number before the dose above {dia} mmHg")
    if mon.sitter_required:
        holds.append("No responsible adult can stay with you for the whole session")
    return MonitoringPlanText(lines=tuple(lines), hold_parameters=tuple(holds))


def _decision_words(row_decision: str, note: str) -> str:
    words = _DECISION_WORDS.get(row_decision, row_decision.replace("_", " "))
    return f"{words}: {note.strip()}" if note.strip() else words


def _review_summary(session: Session, review_id: int | None) -> ReviewSummary:
    """The interaction review the version was signed over, as it was signed (its snapshot)."""
    row = session.get(InteractionReview, review_id) if review_id is not None else None
    if row is None or row.status != "signed" or row.signed_at is None:
        return ReviewSummary(
            flags=(),
            not_checked=("No signed interaction review is linked to this protocol version.",),
            reviewed_on=None,
            signed_by=None,
        )
    try:
        snapshot = json.loads(row.snapshot_json or "{}")
    except json.JSONDecodeError:
        snapshot = {}
    if not isinstance(snapshot, dict):
        snapshot = {}
    decisions = {d.carry_forward_key: d for d in row.decisions}
    flags: list[ReviewFlag] = []
    for item in snapshot.get("flags", []):
        if not isinstance(item, dict):
            continue
        title = str(item.get("title", "")).strip() or str(item.get("rule_id", "Finding"))
        entered = str(item.get("entered_as", "")).strip()
        if entered and entered.casefold() not in title.casefold():
            title = f"{title} (on the chart as “{entered}”)"
        decision = decisions.get(str(item.get("carry_forward_key", "")))
        if decision is not None:
            words = _decision_words(decision.decision, decision.note)
        else:
            words = "No decision needed for a finding of this severity"
        flags.append(
            ReviewFlag(
                severity=_capitalised(str(item.get("severity", "not graded"))),
                title=title,
                decision=words,
            )
        )
    not_checked = tuple(str(x) for x in snapshot.get("not_checked", []) if str(x).strip())
    if "flags" not in snapshot:
        not_checked += ("The stored review could not be read, so its findings are not shown.",)
    return ReviewSummary(
        flags=tuple(flags),
        not_checked=not_checked,
        reviewed_on=row.signed_at.astimezone(UTC).date(),
        signed_by=row.signed_by_full_name or row.signed_by,
    )


@dataclass
class _Shared:
    """What every plan of one batch has in common, read once per batch."""

    database_id: str
    practice: PracticeInfo
    weeks: int
    prescribers: dict[tuple[str, str | None], PrescriberBlock]

    @classmethod
    def read(cls, session: Session, weeks_shown: int | None) -> _Shared:
        return cls(
            _database_id(session), _practice(session), weeks_shown or _weeks_shown(session), {}
        )

    def prescriber(self, session: Session, user_name: str, name: str | None) -> PrescriberBlock:
        key = (user_name, name)
        if key not in self.prescribers:
            self.prescribers[key] = _prescriber(session, user_name, name)
        return self.prescribers[key]


def plan_for_version(
    session: Session,
    version: ProtocolVersionInfo,
    *,
    weeks_shown: int | None = None,
    _shared: _Shared | None = None,
) -> PlanDocument:
    """Build the plan of one protocol version (a signed one, or a draft as a watermarked preview).

    Doses are in mg and mg/kg at the weight (kg) stored with the version; the calendar is the
    version's whole ``dosing_calendar`` from its start date. ``weeks_shown`` defaults to the
    practice setting ``plan_calendar_weeks``. Raises UserFacingError when the version has no
    weight (mg/kg cannot be printed).
    """
    shared = _shared or _Shared.read(session, weeks_shown)
    patient = session.get(Patient, version.patient_id)
    if patient is None:
        raise UserFacingError("This patient is no longer in the practice database.")
    is_draft = not version.is_signed
    signer = version.signed_by if not is_draft else None
    prescriber_user = signer or version.created_by
    protocol = version.protocol
    weight = version.weight
    summary = _summary(protocol, version)
    signed_name = (version.signed_by_full_name or version.signed_by) if not is_draft else None
    return PlanDocument(
        plan_id=plan_id_for(shared.database_id, version.protocol_id),
        version=version.number,
        title=PLAN_TITLE,
        practice=shared.practice,
        patient=_patient_block(patient),
        prescriber=shared.prescriber(session, prescriber_user, signed_name),
        protocol=summary,
        calendar=calendar_rows(protocol, version.start_date, weight.kg if weight else None),
        calendar_weeks_shown=shared.weeks,
        monitoring=_monitoring(protocol),
        review=_review_summary(session, version.interaction_review_id),
        signed_by=signed_name,
        signed_at=version.signed_at if not is_draft else None,
        is_draft=is_draft,
    )


def plan_for_patient(
    session: Session, patient_id: int, *, weeks_shown: int | None = None
) -> PlanDocument:
    """Return the plan of the patient's active signed protocol version.

    Raises UserFacingError (:data:`NO_SIGNED_PROTOCOL`) when the patient has none: a plan is
    exported only from a signed version.
    """
    version = active_signed_protocol(session, patient_id)
    if version is None:
        raise UserFacingError(NO_SIGNED_PROTOCOL)
    return plan_for_version(session, version, weeks_shown=weeks_shown)


def draft_preview_for_patient(session: Session, actor: Actor, patient_id: int) -> PlanDocument:
    """Return a watermarked "DRAFT — not for patient use" plan of the patient's open draft
    (physicians only). Without an open draft, raises UserFacingError."""
    require(actor, Permission.EDIT_CLINICAL, "preview a draft treatment plan")
    course = current_protocol(session, patient_id)
    draft = course.draft if course is not None else None
    if draft is None:
        raise UserFacingError("This patient has no draft protocol to preview.")
    return plan_for_version(session, draft)


# --------------------------------------------------------------------------- document JSON


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def plan_document_to_json(doc: PlanDocument) -> str:
    """Return the whole document as JSON (numbers exact, dates ISO) for storage."""
    return json.dumps(_plain(doc), ensure_ascii=False, sort_keys=True)


def _opt_date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def plan_document_from_json(text: str) -> PlanDocument:
    """Rebuild a document stored by :func:`plan_document_to_json`."""
    d = json.loads(text)
    p, pt, pr, pc = d["practice"], d["patient"], d["prescriber"], d["protocol"]
    signed_at = d.get("signed_at")
    return PlanDocument(
        plan_id=d["plan_id"],
        version=d["version"],
        title=d["title"],
        practice=PracticeInfo(p["name"], p["address"], p["phone"], p.get("logo_path")),
        patient=PatientBlock(
            full_name=pt["full_name"],
            date_of_birth=date.fromisoformat(pt["date_of_birth"]),
            mrn=pt["mrn"],
            state=pt["state"],
            sitter_name=pt.get("sitter_name"),
            sitter_phone=pt.get("sitter_phone"),
            emergency_contact_name=pt.get("emergency_contact_name"),
            emergency_contact_phone=pt.get("emergency_contact_phone"),
        ),
        prescriber=PrescriberBlock(pr["full_name"], pr["npi"], tuple(pr["licence_states"])),
        protocol=ProtocolSummary(
            indication=pc["indication"],
            kind=pc["kind"],
            route=pc["route"],
            formulation=pc["formulation"],
            strength=pc["strength"],
            dose_mg=pc["dose_mg"],
            mg_per_kg=pc["mg_per_kg"],
            weight_kg=pc["weight_kg"],
            weight_date=date.fromisoformat(pc["weight_date"]),
            frequency=pc["frequency"],
            titration_steps=tuple(pc["titration_steps"]),
            max_dose_mg=pc["max_dose_mg"],
            duration=pc["duration"],
            supply_per_30_days=pc["supply_per_30_days"],
            refills=pc["refills"],
            sig=pc["sig"],
        ),
        calendar=tuple(
            CalendarRow(
                date.fromisoformat(r["day"]), r["dose_mg"], r["mg_per_kg"], tuple(r["events"])
            )
            for r in d["calendar"]
        ),
        calendar_weeks_shown=d["calendar_weeks_shown"],
        monitoring=MonitoringPlanText(
            tuple(d["monitoring"]["lines"]), tuple(d["monitoring"]["hold_parameters"])
        ),
        review=ReviewSummary(
            flags=tuple(
                ReviewFlag(f["severity"], f["title"], f["decision"]) for f in d["review"]["flags"]
            ),
            not_checked=tuple(d["review"]["not_checked"]),
            reviewed_on=_opt_date(d["review"].get("reviewed_on")),
            signed_by=d["review"].get("signed_by"),
        ),
        signed_by=d.get("signed_by"),
        signed_at=datetime.fromisoformat(signed_at) if signed_at else None,
        is_draft=d["is_draft"],
    )


# --------------------------------------------------------------------------- file names


def _safe_part(text: str) -> str:
    cleaned = _UNSAFE_IN_NAME.sub("_", unicodedata.normalize("NFC", text))
    return re.sub(r"\s+", "_", cleaned.strip())


def check_file_pattern(pattern: str) -> None:
    """Raise UserFacingError unless ``pattern`` only uses :data:`FILE_PATTERN_FIELDS`."""
    if not pattern.strip():
        raise UserFacingError("Enter a file-name pattern, e.g. " + DEFAULT_FILE_PATTERN)
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError:
        raise UserFacingError(
            "The file-name pattern has an unmatched { or }; use fields like {mrn}."
        ) from None
    allowed = ", ".join("{" + name + "}" for name in FILE_PATTERN_FIELDS)
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in FILE_PATTERN_FIELDS or spec or conversion:
            raise UserFacingError(
                f"The file-name pattern can use only these fields: {allowed}."
            )


def plan_file_name(pattern: str, values: Mapping[str, str]) -> str:
    """Fill ``pattern`` with ``values`` and make the result a safe file name ending in .pdf.

    Path separators, characters Windows forbids and control characters become "_", so a name
    can never leave the chosen folder; reserved device names and leading dots are defused.
    """
    check_file_pattern(pattern)
    filled = pattern.format(**{k: _safe_part(v) for k, v in values.items()})
    name = _safe_part(filled).lstrip(".").rstrip(". ")
    if name.lower().endswith(".pdf"):
        name = name[:-4].rstrip(". ")
    if not name or name.split(".")[0].upper() in _WINDOWS_RESERVED:
        name = f"plan_{name}"
    return name[: _MAX_FILE_NAME - 4] + ".pdf"


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{name[:-4]}_{n}.pdf"
    taken.add(candidate.casefold())
    return candidate


# --------------------------------------------------------------------------- export


@dataclass(frozen=True)
class PlannedExport:
    """One plan ready to render: the patient, the version it comes from and its file name."""

    patient_id: int
    mrn: str
    version_id: int
    doc: PlanDocument
    file_name: str

    def __repr__(self) -> str:  # keeps names out of logs and tracebacks
        return f"PlannedExport(patient_id={self.patient_id}, version_id={self.version_id})"


@dataclass(frozen=True)
class ExportOutcome:
    """What happened to one patient's plan: ``status`` is written, skipped, failed or cancelled;
    ``reason`` explains a skip or failure in words (no patient data)."""

    patient_id: int
    mrn: str
    status: str
    reason: str = ""
    path: Path | None = None
    version: int | None = None
    content_hash: str | None = None
    file_sha256: str | None = None

    @property
    def is_written(self) -> bool:
        return self.status == JobStatus.WRITTEN.value


@dataclass(frozen=True)
class ExportBatch:
    """The plans to render and the patients skipped before rendering (with the reason)."""

    planned: tuple[PlannedExport, ...]
    skipped: tuple[ExportOutcome, ...]


@dataclass(frozen=True)
class ExportSummary:
    """Every patient's outcome, in the order asked for (skipped ones first)."""

    outcomes: tuple[ExportOutcome, ...]

    def _with(self, status: JobStatus) -> tuple[ExportOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == status.value)

    @property
    def written(self) -> tuple[ExportOutcome, ...]:
        return self._with(JobStatus.WRITTEN)

    @property
    def skipped(self) -> tuple[ExportOutcome, ...]:
        return self._with(JobStatus.SKIPPED)

    @property
    def failed(self) -> tuple[ExportOutcome, ...]:
        return self._with(JobStatus.FAILED)

    @property
    def cancelled(self) -> tuple[ExportOutcome, ...]:
        return self._with(JobStatus.CANCELLED)

    def describe(self) -> str:
        """One line: "Written 2, skipped 1 (no signed protocol: 1)." and failures/cancels."""
        text = f"Written {len(self.written)}, skipped {len(self.skipped)}"
        reasons: dict[str, int] = {}
        for outcome in self.skipped:
            reasons[_short_reason(outcome.reason)] = reasons.get(
                _short_reason(outcome.reason), 0
            ) + 1
        if reasons:
            text += " (" + "; ".join(f"{r}: {n}" for r, n in reasons.items()) + ")"
        if self.failed:
            text += f", failed {len(self.failed)}"
        if self.cancelled:
            text += f", cancelled {len(self.cancelled)}"
        return text + "."


def _short_reason(reason: str) -> str:
    if reason == NO_SIGNED_PROTOCOL:
        return "no signed protocol"
    if reason == NO_WEIGHT:
        return "no weight on the signed version"
    if "already exists" in reason:
        return "file already exists"
    return reason.rstrip(".")


def plan_export_batch(
    session: Session,
    actor: Actor,
    patient_ids: Sequence[int] | None,
    *,
    pattern: str = DEFAULT_FILE_PATTERN,
    weeks_shown: int | None = None,
    today: date | None = None,
) -> ExportBatch:
    """Collect the plans to export: for ``patient_ids`` (in order), or every patient with an
    active signed protocol when ``None``. Patients without a signed protocol (or whose
    version cannot be printed) are skipped with the reason; file names follow ``pattern``
    and are made unique within the batch."""
    require(actor, Permission.EXPORT_PLANS, "export treatment plans")
    check_file_pattern(pattern)
    signed = active_signed_protocols(session, patient_ids)
    ids = list(patient_ids) if patient_ids is not None else sorted(signed)
    shared = _Shared.read(session, weeks_shown)
    day = (today or datetime.now(UTC).date()).isoformat()
    patients: dict[int, Patient] = {}
    reviews: list[InteractionReview] = []  # held so the identity map keeps them for the batch
    review_ids = [v.interaction_review_id for v in signed.values() if v.interaction_review_id]
    for chunk in range(0, max(len(ids), len(review_ids)), _SQL_CHUNK):
        # Load patients and reviews (with decisions) in bulk; the per-plan lookups then come
        # from the session's identity map instead of one query each.
        patients.update(
            (p.id, p)
            for p in session.execute(
                select(Patient).where(Patient.id.in_(ids[chunk : chunk + _SQL_CHUNK]))
            ).scalars()
        )
        reviews.extend(
            session.execute(
                select(InteractionReview)
                .where(InteractionReview.id.in_(review_ids[chunk : chunk + _SQL_CHUNK]))
                .options(selectinload(InteractionReview.decisions))
            ).scalars()
        )
    planned: list[PlannedExport] = []
    skipped: list[ExportOutcome] = []
    taken: set[str] = set()
    for patient_id in ids:
        patient = patients.get(patient_id)
        if patient is None:
            skipped.append(ExportOutcome(patient_id, "", "skipped", "This patient was not found."))
            continue
        version = signed.get(patient_id)
        if version is None:
            skipped.append(ExportOutcome(patient_id, patient.mrn, "skipped", NO_SIGNED_PROTOCOL))
            continue
        try:
            doc = plan_for_version(session, version, _shared=shared)
        except UserFacingError as error:
            skipped.append(ExportOutcome(patient_id, patient.mrn, "skipped", error.message))
            continue
        values = {
            "last_name": patient.last_name,
            "first_name": patient.first_name,
            "mrn": patient.mrn,
            "version": str(version.number),
            "plan_id": doc.plan_id,
            "date": day,
        }
        name = _unique(plan_file_name(pattern, values), taken)
        planned.append(PlannedExport(patient_id, patient.mrn, version.version_id, doc, name))
    return ExportBatch(tuple(planned), tuple(skipped))


def remember_signed_plan(
    session: Session, actor: Actor, version_id: int, doc: PlanDocument
) -> str:
    """Store a signed plan's document under its content hash (once); return the hash."""
    if doc.is_draft or not doc.is_signed:
        raise UserFacingError("Only signed plans are recorded; a draft preview is not a plan.")
    content_hash = plan_content_hash(doc)
    exists = session.execute(
        select(SignedPlanContent.id).where(SignedPlanContent.content_hash == content_hash)
    ).first()
    if exists is None:
        session.add(
            SignedPlanContent(
                protocol_version_id=version_id,
                content_hash=content_hash,
                document_json=plan_document_to_json(doc),
                calendar_weeks_shown=doc.calendar_weeks_shown,
                first_exported_by=actor.user_name,
            )
        )
        session.flush()
    return content_hash


def _audit_export(
    session: Session, actor: Actor, item: PlannedExport, result: PlanJobResult, encrypted: bool
) -> None:
    record_event(
        session,
        actor,
        audit_actions.PLAN_EXPORTED,
        patient_id=item.patient_id,
        detail=(
            f"plan {item.doc.plan_id} version {item.doc.version} "
            f"(protocol version id {item.version_id}); content {result.content_hash}; "
            f"file sha256 {result.file_sha256}; encrypted {'yes' if encrypted else 'no'}"
        ),
    )


def record_plan_exports(
    session: Session,
    actor: Actor,
    batch: ExportBatch,
    results: Sequence[PlanJobResult],
    *,
    encrypted: bool,
) -> ExportSummary:
    """Record the written plans (content stored, one audit event each) and summarise."""
    require(actor, Permission.EXPORT_PLANS, "export treatment plans")
    outcomes = list(batch.skipped)
    for item, result in zip(batch.planned, results, strict=True):
        if result.is_written:
            remember_signed_plan(session, actor, item.version_id, item.doc)
            _audit_export(session, actor, item, result, encrypted)
        outcomes.append(
            ExportOutcome(
                patient_id=item.patient_id,
                mrn=item.mrn,
                status=result.status.value,
                reason=result.message or "",
                path=result.path,
                version=item.doc.version,
                content_hash=result.content_hash,
                file_sha256=result.file_sha256,
            )
        )
    return ExportSummary(tuple(outcomes))


def export_plans(
    database: PracticeDatabase,
    actor: Actor,
    patient_ids: Sequence[int] | None,
    folder: Path,
    *,
    pattern: str = DEFAULT_FILE_PATTERN,
    password: str | None = None,
    workers: int = 2,
    cancel: threading.Event | Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
) -> ExportSummary:
    """Export one plan per patient into ``folder`` (``None`` = every patient with an active
    signed protocol). Safe to call from a worker thread: the database is used in two short
    sessions and the PDFs are rendered on ``workers`` processes in between. ``password``
    (optional) encrypts every file with AES-256 and is never stored."""
    if password is not None and not password:
        raise UserFacingError("The PDF password cannot be empty.")
    folder = Path(folder)
    if not folder.is_dir():
        raise UserFacingError("The folder for the plans does not exist.")
    with database.session() as session:
        batch = plan_export_batch(session, actor, patient_ids, pattern=pattern)
    jobs = [PlanJob(item.doc, folder / item.file_name, password) for item in batch.planned]
    results = render_plan_files(
        jobs, workers, cancel=cancel, progress=progress, overwrite=overwrite
    )
    with database.session() as session:
        return record_plan_exports(
            session, actor, batch, results, encrypted=password is not None
        )


def export_plan_to_file(
    database: PracticeDatabase,
    actor: Actor,
    patient_id: int,
    path: Path,
    *,
    password: str | None = None,
    overwrite: bool = False,
) -> ExportOutcome:
    """Export the patient's plan to ``path`` (one file, rendered in this process) and record it.

    Raises UserFacingError when the patient has no signed protocol, the version cannot be
    printed, the file exists (unless ``overwrite``) or cannot be written.
    """
    path = Path(path)
    with database.session() as session:
        require(actor, Permission.EXPORT_PLANS, "export treatment plans")
        mrn = session.execute(select(Patient.mrn).where(Patient.id == patient_id)).scalar()
        if mrn is None:
            raise UserFacingError("This patient is no longer in the practice database.")
        version = active_signed_protocol(session, patient_id)
        if version is None:
            raise UserFacingError(NO_SIGNED_PROTOCOL)
        doc = plan_for_version(session, version)
    item = PlannedExport(patient_id, mrn, version.version_id, doc, path.name)
    [result] = render_plan_files([PlanJob(doc, path, password)], 1, overwrite=overwrite)
    if not result.is_written:
        raise UserFacingError(result.message or "The plan could not be written.")
    with database.session() as session:
        summary = record_plan_exports(
            session, actor, ExportBatch((item,), ()), [result], encrypted=password is not None
        )
    return summary.outcomes[0]


def export_draft_preview(
    database: PracticeDatabase, actor: Actor, patient_id: int, path: Path
) -> Path:
    """Write a watermarked draft preview (physicians only) to ``path``; audited, never
    recorded as a plan and never verifiable."""
    from ketadesk.reports.plan_pdf import render_plan_pdf

    with database.session() as session:
        doc = draft_preview_for_patient(session, actor, patient_id)
    Path(path).write_bytes(render_plan_pdf(doc))
    with database.session() as session:
        record_event(
            session, actor, audit_actions.PLAN_DRAFT_PREVIEWED, patient_id=patient_id,
            detail=f"plan {doc.plan_id} draft version {doc.version}",
        )
    return Path(path)


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class VerifyResult:
    """Whether a printed plan is a genuine plan of a signed protocol version.

    ``matches`` needs both: its content hash is one this database recorded for a signed
    version, and its pages show exactly what that version's plan renders to. ``message`` says
    why in words. ``is_current`` is true while that version is still the patient's signed
    version in force.
    """

    matches: bool
    message: str
    plan_id: str | None = None
    version: int | None = None
    content_hash: str | None = None
    patient_id: int | None = None
    mrn: str | None = None
    signed_by: str | None = None
    signed_at: datetime | None = None
    is_current: bool = False


def pdf_needs_password(pdf_bytes: bytes) -> bool:
    """True when the PDF is encrypted (the caller must ask for its password)."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        return bool(PdfReader(io.BytesIO(pdf_bytes)).is_encrypted)
    except (PyPdfError, ValueError, KeyError, OSError):
        return False


def _not_matching(message: str, **known: Any) -> VerifyResult:
    return VerifyResult(matches=False, message=message, **known)


def _verify(
    session: Session, pdf_bytes: bytes, password: str | None
) -> tuple[VerifyResult, int | None]:
    from ketadesk.reports.plan_verify import printed_plan_matches, read_plan_identity

    if pdf_needs_password(pdf_bytes) and not password:
        raise UserFacingError("This plan is password-protected; enter its password.")
    try:
        identity = read_plan_identity(pdf_bytes, password)
    except UserFacingError as error:
        if "password" in error.message:
            raise
        return _not_matching(error.message), None
    known: dict[str, Any] = {
        "plan_id": identity.plan_id,
        "version": identity.version,
        "content_hash": identity.content_hash,
    }
    stored = session.execute(
        select(SignedPlanContent).where(SignedPlanContent.content_hash == identity.content_hash)
    ).scalar_one_or_none()
    if stored is None:
        match = _PLAN_ID.fullmatch(identity.plan_id)
        if match and match.group(1) != _database_id(session)[:6].upper():
            why = "This plan was printed from another practice database."
        else:
            why = (
                "This plan's content hash matches no signed protocol version in this practice "
                "database: it was changed, or it was never exported from a signed version."
            )
        return _not_matching(why, **known), None
    version = session.get(ProtocolVersion, stored.protocol_version_id)
    if version is None or version.status != "signed":
        return _not_matching("The protocol version of this plan is not signed.", **known), None
    patient_id = version.protocol.patient_id
    doc = plan_document_from_json(stored.document_json)
    known.update(
        patient_id=patient_id,
        signed_by=version.signed_by_full_name or version.signed_by,
        signed_at=version.signed_at,
        mrn=session.execute(select(Patient.mrn).where(Patient.id == patient_id)).scalar(),
    )
    if doc.plan_id != identity.plan_id or doc.version != identity.version:
        return _not_matching(
            "The plan id or version stored in the file does not agree with its content hash; "
            "the file has been altered.",
            **known,
        ), patient_id
    if plan_content_hash(doc) != stored.content_hash:
        return _not_matching(
            "The stored record of this plan does not match its hash; the database record "
            "has been altered.",
            **known,
        ), patient_id
    if not printed_plan_matches(pdf_bytes, doc, password):
        return _not_matching(
            "The content hash is genuine, but the printed pages differ from the signed plan: "
            "the file has been edited.",
            **known,
        ), patient_id
    current = session.execute(
        select(ProtocolVersion.id)
        .join(PatientProtocol)
        .where(
            PatientProtocol.patient_id == patient_id,
            PatientProtocol.status == "active",
            ProtocolVersion.status == "signed",
        )
        .order_by(ProtocolVersion.signed_at.desc(), ProtocolVersion.number.desc())
        .limit(1)
    ).scalar()
    is_current = current == version.id
    state = "it is the version in force" if is_current else "a newer version or a discontinued "
    if not is_current:
        state += "protocol has replaced it"
    message = f"Matches signed version {doc.version} of plan {doc.plan_id}; {state}."
    return VerifyResult(True, message, is_current=is_current, **known), patient_id


def verify_plan_file(
    session: Session,
    pdf_bytes: bytes,
    password: str | None = None,
    *,
    actor: Actor | None = None,
) -> VerifyResult:
    """Check a printed plan against the database: its content hash must be one recorded for a
    signed protocol version AND its pages must show exactly that plan (``printed_plan_matches``),
    which catches an edited dose under a genuine hash.

    An encrypted plan needs ``password`` (UserFacingError otherwise). With ``actor`` the check
    is audited (plan id, version, result; no names).
    """
    result, patient_id = _verify(session, pdf_bytes, password)
    if actor is not None:
        record_event(
            session, actor, audit_actions.PLAN_VERIFIED, patient_id=patient_id,
            detail=(
                f"plan {result.plan_id or '?'} version {result.version or '?'}; "
                f"{'matches' if result.matches else 'does not match'}"
            )[:200],
        )
    return result

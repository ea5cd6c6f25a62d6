"""Treatment plan documents from the database: one protocol version becomes a PlanDocument.

This module maps the chart onto :class:`~ketadesk.reports.plan_document.PlanDocument`: the
practice letterhead from the practice settings, the patient block, the prescriber from the
signing physician's user record, the signed protocol version (summary, dosing calendar from
``core/dosing_calendar``, monitoring) and the interaction review that version was signed over.

Only signed protocol versions become plans; a physician may also render a draft as a
watermarked preview (:func:`draft_preview_for_patient`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core.date_styles import DATE_STYLE_LABELS, DEFAULT_DATE_STYLE
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
from ketadesk.core.knowledge_base import KnowledgeBase, load_knowledge_base
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
from ketadesk.models.interaction_reviews import InteractionReview, ReviewDecision
from ketadesk.models.patients import Patient
from ketadesk.models.practice import PracticeMeta
from ketadesk.models.protocols import PatientProtocol
from ketadesk.models.users import User
from ketadesk.models.visits import VisitPackBase
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
)
from ketadesk.reports.plan_pdf_styles import fmt_date
from ketadesk.storage.practice.settings_store import get_setting
from ketadesk.storage.protocols.protocol_versions import (
    ProtocolVersionInfo,
    active_signed_protocol,
    current_protocol,
)
from ketadesk.storage.reviews.interaction_review_snapshot import stored_snapshot
from ketadesk.storage.reviews.interaction_review_views import UNREAD_PART_MARK
from ketadesk.storage.security.visit_pack_identity import visit_pack_identity

PLAN_TITLE = "Home ketamine treatment plan"
NO_SIGNED_PROTOCOL = (
    "This patient has no signed protocol; a plan can be exported only from a signed version."
)
NO_WEIGHT = (
    "The protocol version has no weight recorded, so the dose in mg/kg cannot be printed; "
    "record a weight and sign a new version."
)
CALENDAR_WEEKS_KEY = "plan_calendar_weeks"
DATE_STYLE_KEY = "plan_date_format"

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
    "continue_with_monitoring": "Continue ketamine, with the extra checks in this plan",
    "adjust_protocol": "Your physician changed your ketamine plan because of this",
    "hold_ketamine": "Do not take ketamine until your physician tells you to start",
    "ask_other_prescriber_to_change": (
        "Your physician is asking your other prescriber about changing this medicine"
    ),
}


def plan_id_for(database_id: str, protocol_id: int) -> str:
    """Return the printed plan id of a protocol: ``KD-<6 hex of the database id>-<protocol id>``.

    The id names the course of treatment (versions are numbered separately) and carries no
    patient data; the database part tells a plan from another practice apart.
    """
    return f"KD-{database_id[:6].upper()}-{protocol_id:05d}"


def practice_database_id(session: Session) -> str:
    """The practice database's id (``"000000"`` when none is recorded)."""
    row = session.get(PracticeMeta, "database_id")
    return row.value if row is not None else "000000"


def _weeks_shown(session: Session) -> int:
    try:
        weeks = int(get_setting(session, CALENDAR_WEEKS_KEY))
    except (TypeError, ValueError):
        weeks = 4
    return max(1, weeks)


def _date_style(session: Session) -> str:
    style = str(get_setting(session, DATE_STYLE_KEY) or "")
    return style if style in DATE_STYLE_LABELS else DEFAULT_DATE_STYLE


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
        emergency_contact_relationship=patient.emergency_contact_relationship or None,
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


def _summary(protocol: Protocol, version: ProtocolVersionInfo, style: str) -> ProtocolSummary:
    weight = version.weight
    if weight is None or weight.kg <= 0:
        raise UserFacingError(NO_WEIGHT)
    start = ladder_doses_mg(protocol.ladder)[0]
    duration = f"{protocol.duration_weeks} weeks from {fmt_date(version.start_date, style)}"
    if protocol.review_date is not None:
        duration += f"; review with your physician by {fmt_date(protocol.review_date, style)}"
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


def _monitoring(protocol: Protocol, style: str) -> MonitoringPlanText:
    mon = protocol.monitoring
    lines = list(monitoring_instructions(mon))
    if mon.phq9_every_weeks:
        lines.append(f"Complete the PHQ-9 questionnaire {_every(mon.phq9_every_weeks, 'week')}.")
    if mon.gad7_every_weeks:
        lines.append(f"Complete the GAD-7 questionnaire {_every(mon.gad7_every_weeks, 'week')}.")
    if mon.check_in_every_days:
        lines.append(f"Check in with the practice {_every(mon.check_in_every_days, 'day')}.")
    if protocol.review_date is not None:
        lines.append(
            f"Next review with your physician: {fmt_date(protocol.review_date, style)}."
        )
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


def _decision_words(row_decision: str) -> str:
    # The patient's plan gets the decision as a category in patient words. The physician's
    # free-text note is clinician-only unless they marked it "for the patient" (below).
    return _DECISION_WORDS.get(row_decision, "Your physician has reviewed this")


def _patient_note(decision: ReviewDecision | None) -> str | None:
    """The physician's note on a decision, only when they marked it for the patient."""
    if decision is None or not decision.note_for_patient:
        return None
    return " ".join(decision.note.split()) or None


def _rule_titles(kb: KnowledgeBase) -> dict[str, str]:
    """Each rule's own title, without the figures a check appended (such as the
    benzodiazepine load in mg/day diazepam-equivalent, which is clinician wording)."""
    titles = {rule.rule_id: rule.title for rule in kb.drug_rules}
    titles.update(
        (rule.rule_id, rule.title) for rules in kb.condition_rules.values() for rule in rules
    )
    titles.update((grade.rule_id, grade.title) for grade in kb.bp_grades)
    titles[kb.bp_controlled.rule_id] = kb.bp_controlled.title
    titles[kb.bp_not_recorded.rule_id] = kb.bp_not_recorded.title
    return titles


def _patient_not_checked(snapshot: Mapping[str, Any]) -> tuple[str, ...]:
    """What the review could not check, for the patient: their medicines as named, but no
    condition line as typed in the chart (chart shorthand such as "hx of ... / denies SI" is
    clinician wording); unrecognised conditions are counted instead."""
    conditions = [c for c in snapshot.get("conditions", []) if isinstance(c, dict)]
    unrecognised = {
        " ".join(str(c.get("entered_as", "")).split()).casefold()
        for c in conditions
        if not c.get("concept_name")
    }
    kept: list[str] = []
    hidden = 0
    for entry in snapshot.get("not_checked", []):
        text = str(entry).strip()
        if not text:
            continue
        if " ".join(text.split()).casefold() in unrecognised or UNREAD_PART_MARK in text:
            hidden += 1
            continue
        kept.append(text)
    if hidden:
        kept.append(
            "1 health condition on your chart" if hidden == 1
            else f"{hidden} health conditions on your chart"
        )
    return tuple(kept)


def _patient_finding_title(item: Mapping[str, Any], kb: KnowledgeBase) -> str:
    """A finding as the patient and their sitter read it: the rule's own title and what it is
    about by its recognised name (the medicine's generic name, the condition's name in the
    knowledge base), never the chart's shorthand as typed ("hx of psychosis 2019 / denies
    SI") or a dose-equivalent calculation."""
    rule_id = str(item.get("rule_id", ""))
    title = _rule_titles(kb).get(rule_id) or str(item.get("title", "")).split(" (")[0].strip()
    title = title or "Finding"
    kind = str(item.get("kind", ""))
    if kind == "drug" and item.get("drug"):
        generic = str(item["drug"])
        return f"{title} (your medicine: {kb.display_names.get(generic, generic)})"
    if kind == "condition":
        concept = next(
            (
                kb.conditions[rule.concept_id].name
                for rules in kb.condition_rules.values()
                for rule in rules
                if rule.rule_id == rule_id and rule.concept_id in kb.conditions
            ),
            None,
        )
        if concept and concept.casefold() not in title.casefold():
            return f"{title} (your health condition: {concept})"
    return title


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
    snapshot = stored_snapshot(row.snapshot_json)
    decisions = {d.carry_forward_key: d for d in row.decisions}
    kb = load_knowledge_base()
    flags: list[ReviewFlag] = []
    for item in snapshot.get("flags", []):
        if not isinstance(item, dict):
            continue
        title = _patient_finding_title(item, kb)
        decision = decisions.get(str(item.get("carry_forward_key", "")))
        if decision is not None:
            words = _decision_words(decision.decision)
        else:
            words = "No change needed for a finding like this; your physician has seen it"
        flags.append(
            ReviewFlag(
                severity=_capitalised(str(item.get("severity", "not graded"))),
                title=title,
                decision=words,
                patient_note=_patient_note(decision),
            )
        )
    not_checked = _patient_not_checked(snapshot)
    read = {str(x).strip() for x in snapshot.get("read_by_physician", [])}
    # The patient's list counts condition lines instead of quoting them, so the count reads
    # as "read by your physician" when the physician confirmed every not-checked line.
    all_read = bool(read) and all(
        str(x).strip() in read for x in snapshot.get("not_checked", []) if str(x).strip()
    )
    read_by_physician = tuple(x for x in not_checked if all_read or x in read)
    if "flags" not in snapshot:
        not_checked += ("The stored review could not be read, so its findings are not shown.",)
    return ReviewSummary(
        flags=tuple(flags),
        not_checked=not_checked,
        reviewed_on=row.signed_at.astimezone(UTC).date(),
        signed_by=row.signed_by_full_name or row.signed_by,
        read_by_physician=read_by_physician,
    )


@dataclass
class PlanBatchContext:
    """What every plan of one batch has in common, read once per batch."""

    database_id: str
    practice: PracticeInfo
    weeks: int
    prescribers: dict[tuple[str, str | None], PrescriberBlock]
    date_style: str = DEFAULT_DATE_STYLE
    # In a visit pack: the practice's database id and the protocols checked out of it, whose
    # plans are the practice's plans (printed on the laptop or at the office, one plan id).
    office_database_id: str = ""
    office_protocol_ids: frozenset[int] = frozenset()

    @classmethod
    def read(cls, session: Session, weeks_shown: int | None) -> PlanBatchContext:
        identity = visit_pack_identity(session)
        office_protocols: frozenset[int] = frozenset()
        if identity is not None:
            office_protocols = frozenset(
                session.execute(
                    select(PatientProtocol.id).join(
                        VisitPackBase, VisitPackBase.record_uid == PatientProtocol.uid
                    )
                ).scalars()
            )
        return cls(
            practice_database_id(session),
            _practice(session),
            weeks_shown or _weeks_shown(session),
            {},
            _date_style(session),
            "" if identity is None else identity.practice_database_id,
            office_protocols,
        )

    def plan_id(self, protocol_id: int) -> str:
        """The printed plan id of a protocol (a visit pack prints the practice's own)."""
        if protocol_id in self.office_protocol_ids and self.office_database_id:
            return plan_id_for(self.office_database_id, protocol_id)
        return plan_id_for(self.database_id, protocol_id)

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
    shared: PlanBatchContext | None = None,
) -> PlanDocument:
    """Build the plan of one protocol version (a signed one, or a draft as a watermarked preview).

    Doses are in mg and mg/kg at the weight (kg) stored with the version; the calendar is the
    version's whole ``dosing_calendar`` from its start date. ``weeks_shown`` defaults to the
    practice setting ``plan_calendar_weeks``. Raises UserFacingError when the version has no
    weight (mg/kg cannot be printed).
    """
    shared = shared or PlanBatchContext.read(session, weeks_shown)
    patient = session.get(Patient, version.patient_id)
    if patient is None:
        raise UserFacingError("This patient is no longer in the practice database.")
    is_draft = not version.is_signed
    signer = version.signed_by if not is_draft else None
    prescriber_user = signer or version.created_by
    protocol = version.protocol
    weight = version.weight
    summary = _summary(protocol, version, shared.date_style)
    signed_name = (version.signed_by_full_name or version.signed_by) if not is_draft else None
    return PlanDocument(
        plan_id=shared.plan_id(version.protocol_id),
        version=version.number,
        title=PLAN_TITLE,
        practice=shared.practice,
        patient=_patient_block(patient),
        prescriber=shared.prescriber(session, prescriber_user, signed_name),
        protocol=summary,
        calendar=calendar_rows(protocol, version.start_date, weight.kg if weight else None),
        calendar_weeks_shown=shared.weeks,
        monitoring=_monitoring(protocol, shared.date_style),
        review=_review_summary(session, version.interaction_review_id),
        signed_by=signed_name,
        signed_at=version.signed_at if not is_draft else None,
        is_draft=is_draft,
        date_style=shared.date_style,
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

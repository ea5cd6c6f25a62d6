"""The chart's inputs to an interaction review, and their fingerprint.

An interaction review is run over the patient's active medication lines as typed, active
conditions, the latest vitals and the pregnant flag. This module reads them from the chart
(one patient, or many at once for the roster) and fingerprints them together with the
knowledge-base version, so a signed review can tell when the chart has moved on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core.demographics import age_in_years
from ketadesk.core.errors import UserFacingError
from ketadesk.core.interaction_check import Vitals, age_band, review_fingerprint
from ketadesk.core.knowledge_base import KnowledgeBase
from ketadesk.models.patients import Patient, PatientCondition, PatientMedication, VitalSign


@dataclass(frozen=True)
class VitalsUsed:
    """The latest value of each vital on the chart, each with the time it was measured:
    BP in mmHg (systolic and diastolic from the same reading), heart rate per minute,
    weight in kg. ``measured_at`` is the newest of those times.

    A weight saved on Demographics makes a weight-only row; it must not hide the blood
    pressure taken the same day, so each vital is taken from its own latest reading.
    """

    measured_at: datetime
    systolic: int | None
    diastolic: int | None
    heart_rate: int | None
    weight_kg: float | None
    bp_measured_at: datetime | None = None
    heart_rate_measured_at: datetime | None = None
    weight_measured_at: datetime | None = None

    def summary(self) -> str:
        """E.g. ``"BP 150/95 mmHg (2026-11-20), HR 72/min (2026-11-20), 80.5 kg (2026-12-01)"``."""
        parts = []
        if self.systolic is not None or self.diastolic is not None:
            systolic = "?" if self.systolic is None else str(self.systolic)
            diastolic = "?" if self.diastolic is None else str(self.diastolic)
            parts.append(f"BP {systolic}/{diastolic} mmHg{self._on(self.bp_measured_at)}")
        if self.heart_rate is not None:
            parts.append(f"HR {self.heart_rate}/min{self._on(self.heart_rate_measured_at)}")
        if self.weight_kg is not None:
            parts.append(f"{self.weight_kg:g} kg{self._on(self.weight_measured_at)}")
        if not parts:
            return f"no values ({self.measured_at.date().isoformat()})"
        return ", ".join(parts)

    def _on(self, when: datetime | None) -> str:
        return f" ({(when or self.measured_at).date().isoformat()})"


def latest_of_each_vital(rows: Iterable[VitalSign]) -> VitalsUsed | None:
    """Combine vitals rows (any order) into the latest value of each vital with its date."""
    ordered = sorted(rows, key=lambda row: (row.measured_at, row.id))
    if not ordered:
        return None
    bp = next(
        (r for r in reversed(ordered) if r.systolic is not None or r.diastolic is not None), None
    )
    hr = next((r for r in reversed(ordered) if r.heart_rate is not None), None)
    weight = next((r for r in reversed(ordered) if r.weight_kg is not None), None)
    used = [r.measured_at for r in (bp, hr, weight) if r is not None]
    return VitalsUsed(
        measured_at=max(used) if used else ordered[-1].measured_at,
        systolic=None if bp is None else bp.systolic,
        diastolic=None if bp is None else bp.diastolic,
        heart_rate=None if hr is None else hr.heart_rate,
        weight_kg=None if weight is None else weight.weight_kg,
        bp_measured_at=None if bp is None else bp.measured_at,
        heart_rate_measured_at=None if hr is None else hr.measured_at,
        weight_measured_at=None if weight is None else weight.measured_at,
    )


@dataclass(frozen=True)
class ReviewInputs:
    """Everything a review is run over, exactly as it stands on the chart.

    ``vitals`` is None when there are no vitals or when the latest set is implausible; in
    the second case ``vitals_not_checked`` says why, and the raw values are in
    ``latest_vitals`` so the physician sees what was not used.
    """

    patient_id: int
    medication_lines: tuple[str, ...]
    conditions: tuple[str, ...]
    latest_vitals: VitalsUsed | None
    vitals: Vitals | None
    vitals_not_checked: str | None
    pregnant: bool
    age_years: int | None = None


def local_today() -> date:
    """Today's date where the practice is (the computer's local time zone)."""
    return datetime.now(UTC).astimezone().date()


def age_on(dob: date | None, today: date) -> int | None:
    """Completed years of age on ``today``; None without a date of birth or for one in the
    future (a typing error the chart shows elsewhere)."""
    if dob is None or dob > today:
        return None
    return age_in_years(dob, today)


def medication_line(entered_text: str, dose_text: str | None, frequency_text: str | None) -> str:
    """The line to check: what was typed, plus structured dose/frequency not already in it."""
    parts = [" ".join(entered_text.split())]
    for extra in (dose_text, frequency_text):
        cleaned = " ".join((extra or "").split())
        if cleaned and cleaned.casefold() not in parts[0].casefold():
            parts.append(cleaned)
    return " ".join(p for p in parts if p)


def _condition_line(entered_text: str, icd10: str | None) -> str:
    text = " ".join(entered_text.split())
    code = (icd10 or "").strip()
    if code and code.casefold() not in text.casefold():
        return f"{text} ({code})"
    return text


def _vitals_from_rows(
    rows: Sequence[VitalSign],
) -> tuple[VitalsUsed | None, Vitals | None, str | None]:
    used = latest_of_each_vital(rows)
    if used is None:
        return None, None, None
    try:
        vitals = Vitals(used.systolic, used.diastolic, used.heart_rate, used.weight_kg)
    except UserFacingError as error:
        return used, None, f"Latest vitals ({used.summary()}) not checked: {error.message}"
    return used, vitals, None


def _inputs_from_rows(
    patient_id: int,
    medications: Iterable[tuple[str, str | None, str | None]],
    conditions: Iterable[tuple[str, str | None]],
    vitals_rows: Sequence[VitalSign],
    pregnant: bool,
    age_years: int | None = None,
) -> ReviewInputs:
    """Assemble the inputs from the chart's rows (medications and conditions in chart order)."""
    used, vitals, not_checked = _vitals_from_rows(vitals_rows)
    return ReviewInputs(
        patient_id=patient_id,
        medication_lines=tuple(
            line for text, dose, frequency in medications
            if (line := medication_line(text, dose, frequency))
        ),
        conditions=tuple(
            line for text, icd10 in conditions if (line := _condition_line(text, icd10))
        ),
        latest_vitals=used,
        vitals=vitals,
        vitals_not_checked=not_checked,
        pregnant=pregnant,
        age_years=age_years,
    )


def current_inputs(session: Session, patient_id: int) -> ReviewInputs:
    """The patient's active medication lines as typed, active conditions, the latest value of
    each vital (with its own date) and pregnant flag. Implausible stored vitals are not used;
    the reason is in ``vitals_not_checked``."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise UserFacingError("That patient is no longer in the practice database.")
    meds = session.execute(
        select(PatientMedication.entered_text, PatientMedication.dose_text,
               PatientMedication.frequency_text)
        .where(PatientMedication.patient_id == patient_id, PatientMedication.is_active)
        .order_by(PatientMedication.id)
    ).all()
    conditions = session.execute(
        select(PatientCondition.entered_text, PatientCondition.icd10)
        .where(PatientCondition.patient_id == patient_id, PatientCondition.is_active)
        .order_by(PatientCondition.id)
    ).all()
    vitals_rows = session.execute(
        select(VitalSign).where(VitalSign.patient_id == patient_id)
    ).scalars().all()
    return _inputs_from_rows(
        patient_id, meds, conditions, vitals_rows, bool(patient.pregnant),
        age_on(patient.dob, local_today()),
    )


def inputs_for_patients(session: Session, patient_ids: Sequence[int]) -> dict[int, ReviewInputs]:
    """The review inputs of several patients in a handful of queries (at most ~900 ids a call).

    Ids not in the database get empty inputs (no lines, no vitals, not pregnant).
    """
    meds: dict[int, list[tuple[str, str | None, str | None]]] = {pid: [] for pid in patient_ids}
    for pid, text, dose, frequency in session.execute(
        select(PatientMedication.patient_id, PatientMedication.entered_text,
               PatientMedication.dose_text, PatientMedication.frequency_text)
        .where(PatientMedication.patient_id.in_(patient_ids), PatientMedication.is_active)
        .order_by(PatientMedication.id)
    ):
        meds[pid].append((text, dose, frequency))
    conditions: dict[int, list[tuple[str, str | None]]] = {pid: [] for pid in patient_ids}
    for pid, text, icd10 in session.execute(
        select(PatientCondition.patient_id, PatientCondition.entered_text,
               PatientCondition.icd10)
        .where(PatientCondition.patient_id.in_(patient_ids), PatientCondition.is_active)
        .order_by(PatientCondition.id)
    ):
        conditions[pid].append((text, icd10))
    vitals_rows: dict[int, list[VitalSign]] = {pid: [] for pid in patient_ids}
    for vital in session.execute(
        select(VitalSign).where(VitalSign.patient_id.in_(patient_ids))
    ).scalars():
        vitals_rows[vital.patient_id].append(vital)
    pregnant: dict[int, bool] = {}
    ages: dict[int, int | None] = {}
    today = local_today()
    for pid, flag, dob in session.execute(
        select(Patient.id, Patient.pregnant, Patient.dob).where(Patient.id.in_(patient_ids))
    ):
        pregnant[pid] = bool(flag)
        ages[pid] = age_on(dob, today)
    return {
        pid: _inputs_from_rows(
            pid, meds[pid], conditions[pid], vitals_rows[pid], pregnant.get(pid, False),
            ages.get(pid),
        )
        for pid in patient_ids
    }


def inputs_fingerprint(
    inputs: ReviewInputs, kb_version: str, kb: KnowledgeBase | None = None
) -> str:
    """SHA-256 (hex) of the review inputs and knowledge-base version.

    Vitals that could not be used still count: a corrected reading makes the review stale.
    The patient's age band (the age rules that apply, from ``kb``) counts, not the age: a
    review goes stale when the patient crosses into another band, not on each birthday.
    """
    base = review_fingerprint(
        inputs.medication_lines, inputs.conditions, inputs.vitals, inputs.pregnant, kb_version,
        age_band(inputs.age_years, kb),
    )
    if inputs.vitals is None and inputs.latest_vitals is not None:
        raw = vitals_key(inputs.latest_vitals)
        return hashlib.sha256(f"{base}|vitals not checked|{raw}".encode()).hexdigest()
    return base


def vitals_key(used: VitalsUsed | None) -> str:
    """The stored-vitals values as JSON (``"none"`` without vitals), for comparing readings."""
    if used is None:
        return "none"
    return json.dumps([used.systolic, used.diastolic, used.heart_rate, used.weight_kg])

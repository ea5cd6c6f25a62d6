"""Reading FHIR R4 resources from another system into plain, checked chart records.

Each resource is first checked by the fhir.resources R4B model of its type, then read into
KetaDesk's terms: demographics through ``core.demographics``, vital signs through
``core.measurements``, questionnaires through ``core.questionnaires``, ICD-10-CM codes
against the shipped code list. Anything that cannot be read is a ``ResourceProblem`` in words;
resources KetaDesk does not keep (an Encounter, a CarePlan to be signed again here) are listed
as skipped with the reason. Pure: no database, no files, no Qt.

Units: blood pressure in mmHg, heart rate in beats per minute, weight in kg (lb converted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from pydantic import ValidationError

from ketadesk.core.demographics import (
    PatientDemographics,
    blocking_problems,
    normalise_demographics,
    validate_demographics,
)
from ketadesk.core.errors import UserFacingError
from ketadesk.core.fhir_codes import fhir_codes
from ketadesk.core.fhir_export_mapping import (
    CONTACT_ROLE_SYSTEM,
    SEX_EXTENSION,
    is_ketadesk_prescription_system,
)
from ketadesk.core.icd10cm import icd10cm_code
from ketadesk.core.measurements import blood_pressure_problems, heart_rate_problem, weight_problem
from ketadesk.core.questionnaires import load_instrument, score_questionnaire

LB_PER_KG = 2.2046226218
#: Types read into the chart; other FHIR types are listed as skipped with SKIPPED_REASONS.
READ_TYPES = (
    "Patient", "Condition", "MedicationStatement", "MedicationRequest", "Observation",
    "QuestionnaireResponse",
)
SKIPPED_REASONS = {
    "CarePlan": "a treatment plan is signed again in KetaDesk, never copied from a file",
    "Provenance": "who signed what in the other system stays with that system's record",
    "Practitioner": "users are added in KetaDesk by a user manager",
}
DEFAULT_SKIP_REASON = "KetaDesk does not keep {type} records"
#: Why a prescription KetaDesk issued (in any practice) is listed and not imported.
PRESCRIPTION_NOT_IMPORTED = "prescriptions are issued and signed in KetaDesk, not imported"
_ACTIVE_MED = {"active", "intended", "on-hold", "unknown", "draft"}
_SEX_OF_GENDER = {"female": "female", "male": "male", "other": "other"}
_INACTIVE_CONDITION = {"inactive", "remission", "resolved"}


@dataclass(frozen=True)
class ResourceProblem:
    """One resource that was not read (``blocks``) or was skipped on purpose (not ``blocks``)."""

    where: str
    reason: str
    blocks: bool = True
    kind: str = ""  # the resource type, when the file said it

    def describe(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class ImportedMedication:
    entered_text: str
    dose_text: str = ""
    frequency_text: str = ""
    start_date: date | None = None
    is_active: bool = True


@dataclass
class ImportedCondition:
    entered_text: str
    icd10: str | None = None
    is_active: bool = True


@dataclass
class ImportedVitals:
    """Values measured at one moment (mmHg, beats/min, kg)."""

    measured_at: datetime
    systolic: int | None = None
    diastolic: int | None = None
    heart_rate: int | None = None
    weight_kg: float | None = None


@dataclass
class ImportedQuestionnaire:
    instrument_id: str
    taken_on: date
    answers: tuple[int | None, ...]


@dataclass
class ImportedPatient:
    """One patient read from the file, with everything that refers to them."""

    where: str
    demographics: PatientDemographics
    external_id: str | None
    medications: list[ImportedMedication] = field(default_factory=list)
    conditions: list[ImportedCondition] = field(default_factory=list)
    vitals: dict[datetime, ImportedVitals] = field(default_factory=dict)
    questionnaires: list[ImportedQuestionnaire] = field(default_factory=list)


def validated(raw: dict[str, Any]) -> Any:
    """The resource as its R4B model; raises UserFacingError with the reasons in words."""
    from fhir.resources.R4B import get_fhir_model_class

    kind = raw.get("resourceType")
    try:
        model = get_fhir_model_class(str(kind))
    except (ValueError, KeyError):
        raise UserFacingError(f"'{kind}' is not a FHIR R4 resource type") from None
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise UserFacingError(_validation_words(error)) from None


def _validation_words(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:3]:
        where = ".".join(str(p) for p in item["loc"] if p != "__root__") or "the resource"
        if item["type"] == "missing":
            parts.append(f"{where} is required but missing")
        elif item["type"] == "extra_forbidden":
            parts.append(f"{where} is not an element of this resource type")
        else:
            parts.append(f"{where}: {item['msg'].rstrip('.')}")
    more = len(error.errors()) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def read_patient(resource: Any, where: str, today: date) -> ImportedPatient:
    """Demographics from a Patient; raises UserFacingError when KetaDesk cannot keep them."""
    names = resource.name or []
    name = next((n for n in names if n.use == "official"), names[0] if names else None)
    if name is None or not name.family or not name.given:
        raise UserFacingError("the patient has no family and given name")
    given = [g for g in name.given if g]
    addresses = resource.address or []
    address = next((a for a in addresses if a.use == "home"), addresses[0] if addresses else None)
    phone = next((t.value for t in resource.telecom or [] if t.system == "phone"), "")
    email = next((t.value for t in resource.telecom or [] if t.system == "email"), "")
    sex = _SEX_OF_GENDER.get(resource.gender or "", "unknown")
    for extension in resource.extension or []:
        if extension.url == SEX_EXTENSION and extension.valueCode:
            sex = extension.valueCode
    emergency, sitter = _contacts(resource)
    lines = list(address.line or []) if address else []
    draft = PatientDemographics(
        first_name=given[0],
        middle_name=" ".join(given[1:]),
        last_name=name.family,
        dob=resource.birthDate,
        sex=sex,
        state=(address.state or "") if address else "",
        county=(address.district or "") if address else "",
        phone=phone or "",
        email=email or "",
        address_line1=lines[0] if lines else "",
        address_line2=", ".join(lines[1:]),
        city=(address.city or "") if address else "",
        zip=(address.postalCode or "") if address else "",
        emergency_contact_name=emergency[0],
        emergency_contact_phone=emergency[1],
        emergency_contact_relationship=emergency[2],
        sitter_name=sitter[0],
        sitter_phone=sitter[1],
    )
    if not isinstance(resource.birthDate, date):
        raise UserFacingError("the birth date is missing or not a full date (year, month, day)")
    problems = blocking_problems(validate_demographics(draft, today, confirmed_minor=True))
    if problems:
        raise UserFacingError(" ".join(p.message for p in problems))
    identifiers = [i.value for i in resource.identifier or [] if i.value]
    return ImportedPatient(where, normalise_demographics(draft), identifiers[0] if identifiers
                           else None)


def _contacts(resource: Any) -> tuple[tuple[str, str, str], tuple[str, str]]:
    """(name, phone, relationship) of the emergency contact; (name, phone) of the sitter."""
    emergency, sitter = ("", "", ""), ("", "")
    roles = fhir_codes().systems["contact_role"]
    for contact in resource.contact or []:
        codes = {
            (c.system, c.code) for r in contact.relationship or [] for c in r.coding or []
        }
        name = (contact.name.text or " ".join([*(contact.name.given or []),
                contact.name.family or ""]).strip()) if contact.name else ""
        phone = next((t.value for t in contact.telecom or [] if t.system == "phone"), "") or ""
        if (CONTACT_ROLE_SYSTEM, "sitter") in codes:
            sitter = (name, phone)
        elif (roles, "C") in codes and not any(emergency):
            words = [r.text for r in contact.relationship or [] if r.text and not r.coding]
            emergency = (name, phone, words[0] if words else "")
    return emergency, sitter


def _codeable_text(concept: Any) -> str:
    if concept is None:
        return ""
    if concept.text and concept.text.strip():
        return str(concept.text).strip()
    for coding in concept.coding or []:
        if coding.display:
            return str(coding.display).strip()
    return ""


def read_condition(resource: Any) -> ImportedCondition:
    """A problem-list line: the text as written, an ICD-10-CM code only when it exists."""
    text = _codeable_text(resource.code)
    icd_system = fhir_codes().systems["icd10cm"]
    code = None
    for coding in (resource.code.coding or []) if resource.code else []:
        if coding.system == icd_system and coding.code:
            known = icd10cm_code(str(coding.code).strip().upper())
            if known is None:
                raise UserFacingError(
                    f"'{coding.code}' is not an ICD-10-CM code KetaDesk knows "
                    "(checked against the shipped code list)"
                )
            code = known.code
            text = text or known.description
    if not text:
        raise UserFacingError("the condition has neither text nor a code to read")
    status = ""
    if resource.clinicalStatus is not None:
        status = next((c.code for c in resource.clinicalStatus.coding or [] if c.code), "")
    return ImportedCondition(text[:300], code, status not in _INACTIVE_CONDITION)


def is_ketadesk_prescription(resource: Any) -> bool:
    """True for a MedicationRequest that is a prescription a KetaDesk practice issued (its
    identifier is in a KetaDesk prescription system). Such a prescription is never imported:
    neither as a live prescription (those are issued and signed here) nor as a medication
    line (the signed protocol it follows is not copied either)."""
    return resource.get_resource_type() == "MedicationRequest" and any(
        is_ketadesk_prescription_system(i.system) for i in resource.identifier or []
    )


def read_medication(resource: Any) -> ImportedMedication | None:
    """A medication line as written; None for an entry marked entered in error."""
    if resource.status == "entered-in-error":
        return None
    if getattr(resource, "medicationReference", None) is not None:
        raise UserFacingError(
            "the medication is named only by a reference to a Medication resource; "
            "KetaDesk needs the medication written in the entry itself"
        )
    text = _codeable_text(resource.medicationCodeableConcept)
    if not text:
        raise UserFacingError("the medication has neither text nor a name to read")
    dosage = (getattr(resource, "dosage", None) or getattr(resource, "dosageInstruction", None)
              or [None])[0]
    dose_text = (dosage.text or "") if dosage else ""
    frequency = ""
    if dosage is not None and dosage.timing is not None and dosage.timing.code is not None:
        frequency = _codeable_text(dosage.timing.code)
    start = None
    period = getattr(resource, "effectivePeriod", None)
    if period is not None and period.start is not None:
        start = _as_date(period.start)
    elif getattr(resource, "effectiveDateTime", None) is not None:
        start = _as_date(resource.effectiveDateTime)
    return ImportedMedication(text[:300], dose_text[:100], frequency[:100], start,
                              resource.status in _ACTIVE_MED)


def _as_date(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value


def _moment(value: Any) -> datetime:
    """A FHIR dateTime as an aware UTC moment; a date alone is read as noon UTC that day."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise UserFacingError("the time has no time zone")
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(12), tzinfo=UTC)
    raise UserFacingError("the date and time are missing or not a full date")


def _quantity(value: Any, unit_codes: tuple[str, ...], what: str) -> float:
    if value is None or value.value is None:
        raise UserFacingError(f"the {what} has no value")
    unit = value.code or value.unit or ""
    if unit not in unit_codes:
        raise UserFacingError(f"the {what} is in '{unit}', not in {' or '.join(unit_codes)}")
    return float(value.value)


def _whole(number: float, what: str) -> int:
    if number != int(number):
        raise UserFacingError(f"the {what} {number:g} is not a whole number")
    return int(number)


def read_vital_observation(resource: Any, into: ImportedVitals) -> bool:
    """Add a vital-sign Observation's values (mmHg, beats/min, kg); False when not a vital."""
    codes = fhir_codes()
    loinc = {c.code for c in resource.code.coding or [] if c.system == codes.loinc}
    if codes.blood_pressure.code in loinc:
        for component in resource.component or []:
            found = {c.code for c in component.code.coding or [] if c.system == codes.loinc}
            if component.valueQuantity is None:
                continue
            value = _whole(_quantity(component.valueQuantity, ("mm[Hg]", "mmHg"),
                                     "blood pressure"), "blood pressure")
            if codes.systolic.code in found:
                into.systolic = value
            elif codes.diastolic.code in found:
                into.diastolic = value
        if into.systolic is not None and into.diastolic is not None:
            problems = blood_pressure_problems(into.systolic, into.diastolic)
            if problems:
                raise UserFacingError(problems[0].message)
        return True
    if codes.heart_rate.code in loinc:
        rate = _whole(_quantity(resource.valueQuantity, ("/min", "beats/minute"), "heart rate"),
                      "heart rate")
        if problem := heart_rate_problem(rate):
            raise UserFacingError(problem)
        into.heart_rate = rate
        return True
    if codes.body_weight.code in loinc:
        weight = _quantity(resource.valueQuantity, ("kg", "[lb_av]"), "weight")
        if (resource.valueQuantity.code or resource.valueQuantity.unit) == "[lb_av]":
            weight = round(weight / LB_PER_KG, 1)
        if problem := weight_problem(weight):
            raise UserFacingError(problem)
        into.weight_kg = weight
        return True
    return False


def observation_moment(resource: Any) -> datetime:
    return _moment(resource.effectiveDateTime or (
        resource.effectivePeriod.start if resource.effectivePeriod else None))


def is_questionnaire_observation(resource: Any) -> bool:
    """True for PHQ-9 / GAD-7 panel and total Observations (read from the response instead)."""
    codes = fhir_codes()
    known = {c for i in codes.instruments.values() for c in (i.panel.code, i.total.code)}
    return any(c.code in known for c in resource.code.coding or [] if c.system == codes.loinc)


def read_questionnaire(resource: Any) -> ImportedQuestionnaire | None:
    """A PHQ-9 or GAD-7 response (items linked by their LOINC codes); None for another form."""
    codes = fhir_codes()
    answers_by_link: dict[str, int | None] = {}
    for item in resource.item or []:
        points: int | None = None
        for answer in item.answer or []:
            if answer.valueCoding is not None and answer.valueCoding.code:
                points = codes.answer_points(str(answer.valueCoding.code))
                if points is None:
                    raise UserFacingError(
                        f"question {item.linkId}: answer code '{answer.valueCoding.code}' is "
                        "not one of the four LOINC answers (LA6568-5 to LA6571-9)"
                    )
            elif answer.valueInteger is not None:
                points = int(answer.valueInteger)
        answers_by_link[str(item.linkId).lstrip("/")] = points
    for instrument_id, instrument_codes in codes.instruments.items():
        if not set(instrument_codes.items) & set(answers_by_link):
            continue
        answers = tuple(answers_by_link.get(code) for code in instrument_codes.items)
        score_questionnaire(load_instrument(instrument_id), answers)  # raises in words
        when = resource.authored
        if when is None:
            raise UserFacingError("the questionnaire has no date (authored)")
        return ImportedQuestionnaire(instrument_id, _as_date(when), answers)
    return None

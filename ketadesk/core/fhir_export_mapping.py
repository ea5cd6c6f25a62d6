"""One patient's chart as a FHIR R4 Bundle (type ``collection``), built with fhir.resources.

Pure mapping from plain snapshots (filled by ``storage/interchange``) to the library's R4B
models, so every resource passes the library's validation as it is built; no dictionaries are
assembled by hand. Codes come from ``core.fhir_codes`` (data with sources). Text is always
kept as typed; a code is added only where the chart holds one (ICD-10-CM on problem-list
entries). The knowledge base carries no RxNorm codes, so medications and prescriptions travel
as text only.

Units: blood pressure in mmHg, heart rate in beats per minute, weight in kg, doses in mg.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.address import Address
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.careplan import CarePlan, CarePlanActivity, CarePlanActivityDetail
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.contactpoint import ContactPoint
from fhir.resources.R4B.dosage import Dosage
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.medicationrequest import (
    MedicationRequest,
    MedicationRequestDispenseRequest,
)
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.observation import Observation, ObservationComponent
from fhir.resources.R4B.patient import Patient, PatientContact
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.provenance import Provenance, ProvenanceAgent
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.questionnaireresponse import (
    QuestionnaireResponse,
    QuestionnaireResponseItem,
    QuestionnaireResponseItemAnswer,
)
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.timing import Timing

from ketadesk.core.demographics import PatientDemographics
from ketadesk.core.dosing_calendar import dosing_calendar
from ketadesk.core.fhir_codes import CodedConcept, FhirCodes, fhir_codes
from ketadesk.core.fhir_json import fhir_json_bytes, shared
from ketadesk.core.icd10cm import icd10cm_code
from ketadesk.core.protocols import Protocol, sig_text
from ketadesk.core.questionnaires import load_instrument

# KetaDesk's own identifier systems and extension (URNs: no web address is implied).
SEX_EXTENSION = "urn:ketadesk:fhir:recorded-sex"
CONTACT_ROLE_SYSTEM = "urn:ketadesk:fhir:contact-role"
QUESTIONNAIRE_PREFIX = "urn:ketadesk:questionnaire:"
EXTERNAL_ID_SYSTEM = "urn:ketadesk:external-record-number"
_GENDER = {"female": "female", "male": "male", "intersex": "other", "other": "other"}


_URL_NAMESPACE = uuid.NAMESPACE_URL.bytes
# The RFC 4122 variant bits (10xx) over the first hex digit of the clock sequence.
_VARIANT = {f"{n:x}": f"{0x8 | (n & 0x3):x}" for n in range(16)}


def name_uuid(name: str) -> str:
    """``str(uuid.uuid5(uuid.NAMESPACE_URL, name))`` without building UUID objects (a large
    export names a million resources)."""
    h = hashlib.sha1(_URL_NAMESPACE + name.encode("utf-8")).hexdigest()
    # version 5 in the 13th hex digit, the variant in the 17th
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def day(value: date) -> Any:
    """A calendar date where FHIR takes a dateTime: FHIR allows a date alone there, while the
    library's type hints name only datetime."""
    return value


def mrn_system(practice_id: str) -> str:
    """The identifier system of one practice's MRNs."""
    return f"urn:ketadesk:practice:{practice_id}:mrn"


def user_system(practice_id: str) -> str:
    """The identifier system of one practice's user names (signing physicians)."""
    return f"urn:ketadesk:practice:{practice_id}:user"


def prescription_system(practice_id: str) -> str:
    """The identifier system of one practice's prescription numbers."""
    return f"urn:ketadesk:practice:{practice_id}:prescription"


def is_ketadesk_prescription_system(system: str | None) -> bool:
    """True for the prescription identifier system of any KetaDesk practice."""
    return bool(system) and str(system).startswith("urn:ketadesk:practice:") and str(
        system).endswith(":prescription")


@dataclass(frozen=True)
class MedicationLine:
    row_id: int
    entered_text: str
    dose_text: str
    frequency_text: str
    start_date: date | None
    is_active: bool
    recorded_at: datetime


@dataclass(frozen=True)
class ConditionLine:
    row_id: int
    entered_text: str
    icd10: str | None
    is_active: bool
    recorded_at: datetime


@dataclass(frozen=True)
class VitalsLine:
    """One set of vitals: mmHg, beats per minute, kg (any may be missing)."""

    row_id: int
    measured_at: datetime
    systolic: int | None
    diastolic: int | None
    heart_rate: int | None
    weight_kg: float | None


@dataclass(frozen=True)
class QuestionnaireLine:
    """A PHQ-9 or GAD-7: points per item (None = left blank), total only when complete."""

    row_id: int
    instrument_id: str
    taken_on: date
    answers: tuple[int | None, ...]
    total: int | None


@dataclass(frozen=True)
class SignedPlanLine:
    """One signed protocol version; ``is_current`` when it is the one in force."""

    version_id: int
    number: int
    protocol: Protocol
    start_date: date
    weight_kg: float | None
    signed_by: str
    signed_by_full_name: str
    signed_at: datetime
    is_current: bool


@dataclass(frozen=True)
class PrescriptionLine:
    """One issued and signed prescription: strength in mg per unit, quantity in units;
    ``status`` is "issued" or "void"; ``fills`` counts the dispensings recorded (first fill
    and refills)."""

    row_id: int
    protocol_version_id: int
    product: str
    strength_mg_per_unit: float
    unit_name: str
    quantity: float
    directions: str
    refills: int
    issued_at: datetime
    prescriber: str
    prescriber_full_name: str
    status: str
    fills: int


@dataclass(frozen=True)
class PatientSnapshot:
    """Everything one patient's bundle carries, as plain values."""

    patient_id: int
    mrn: str
    external_id: str | None
    demographics: PatientDemographics
    medications: tuple[MedicationLine, ...] = ()
    conditions: tuple[ConditionLine, ...] = ()
    vitals: tuple[VitalsLine, ...] = ()
    questionnaires: tuple[QuestionnaireLine, ...] = ()
    plans: tuple[SignedPlanLine, ...] = ()
    prescriptions: tuple[PrescriptionLine, ...] = ()


@dataclass(frozen=True)
class ExportContext:
    """The practice the export comes from (its database id names the identifier systems)."""

    practice_id: str
    exported_at: datetime


class _Builder:
    def __init__(self, context: ExportContext, snapshot: PatientSnapshot) -> None:
        self.context = context
        self.snapshot = snapshot
        self.codes: FhirCodes = fhir_codes()
        self.entries: list[BundleEntry] = []
        self.patient_url = self.url("patient", snapshot.patient_id)
        self._subject: Reference | None = None

    def url(self, kind: str, row_id: int | str) -> str:
        return f"urn:uuid:{name_uuid(f'ketadesk:{self.context.practice_id}:{kind}:{row_id}')}"

    def add(self, url: str, resource: Resource) -> None:
        self.entries.append(BundleEntry(fullUrl=url, resource=resource))

    def subject(self) -> Reference:
        if self._subject is None:
            self._subject = Reference(reference=self.patient_url)
        return self._subject

    # Codes, categories and profiles are the same in every resource: each is built (and
    # validated) once per process and shared, as the library's models are never changed here.
    def loinc(self, concept: CodedConcept) -> CodeableConcept:
        return _loinc_concept(self.codes.loinc, concept.code, concept.display)

    def coded(self, system_key: str, code: str, display: str | None = None) -> CodeableConcept:
        return _coded_concept(self.codes.systems[system_key], code, display)

    def meta(self, profile_key: str) -> Meta:
        return _meta(self.codes.profiles[profile_key])

    def quantity(self, value: float, unit_key: str) -> Quantity:
        unit = self.codes.units[unit_key]
        return _quantity(value, unit.display, self.codes.systems["ucum"], unit.code)


# Measured values repeat across a practice (a systolic of 120 mmHg, a score of 14, a 35 mg
# dose): each distinct quantity is built and validated once. ``typed``: 72 and 72.0 are
# written differently ("72" and "72.0"), so they are different quantities.
@functools.lru_cache(maxsize=None, typed=True)
def _quantity(value: float, unit: str, system: str, code: str) -> Quantity:
    return shared(Quantity(value=Decimal(str(value)), unit=unit, system=system, code=code))


@functools.cache
def _loinc_concept(system: str, code: str, display: str) -> CodeableConcept:
    return shared(CodeableConcept(coding=[Coding(system=system, code=code, display=display)],
                                  text=display))


@functools.cache
def _coded_concept(system: str, code: str, display: str | None) -> CodeableConcept:
    return shared(CodeableConcept(coding=[Coding(system=system, code=code, display=display)]))


@functools.cache
def _bare_concept(system: str, code: str) -> CodeableConcept:
    return shared(CodeableConcept(coding=[Coding(system=system, code=code)]))


@functools.cache
def _meta(profile: str) -> Meta:
    return shared(Meta(profile=[profile]))


@functools.cache
def _answer(system: str, code: str, display: str) -> Coding:
    return shared(Coding(system=system, code=code, display=display))


def patient_bundle(snapshot: PatientSnapshot, context: ExportContext) -> Bundle:
    """One patient's chart as a FHIR R4 collection Bundle (validated as it is built)."""
    builder = _Builder(context, snapshot)
    builder.add(builder.patient_url, _patient(builder))
    for condition in snapshot.conditions:
        builder.add(builder.url("condition", condition.row_id), _condition(builder, condition))
    for medication in snapshot.medications:
        url = builder.url("medication", medication.row_id)
        builder.add(url, _medication(builder, medication))
    for vitals in snapshot.vitals:
        _vitals(builder, vitals)
    for form in snapshot.questionnaires:
        _questionnaire(builder, form)
    for plan in snapshot.plans:
        _care_plan(builder, plan)
    signed_versions = {plan.version_id for plan in snapshot.plans}
    for prescription in snapshot.prescriptions:
        _prescription(builder, prescription, signed_versions)
    return Bundle(
        id=name_uuid(builder.patient_url),
        type="collection",
        timestamp=context.exported_at,
        entry=builder.entries,
    )


def bundle_json(bundle: Bundle) -> bytes:
    """The bundle as compact UTF-8 JSON (FHIR's own field order, no empty elements)."""
    return fhir_json_bytes(bundle)


def _patient(b: _Builder) -> Patient:
    d = b.snapshot.demographics
    identifiers = [Identifier(use="usual", system=mrn_system(b.context.practice_id),
                              value=b.snapshot.mrn)]
    if b.snapshot.external_id:
        identifiers.append(
            Identifier(use="secondary", system=EXTERNAL_ID_SYSTEM, value=b.snapshot.external_id)
        )
    given: list[str | None] = [d.first_name, *([d.middle_name] if d.middle_name else [])]
    telecom = []
    if d.phone:
        telecom.append(ContactPoint(system="phone", value=d.phone, use="home"))
    if d.email:
        telecom.append(ContactPoint(system="email", value=d.email))
    lines: list[str | None] = [line for line in (d.address_line1, d.address_line2) if line]
    address = Address(
        use="home", line=lines or None, city=d.city or None, district=d.county or None,
        state=d.state, postalCode=d.zip or None, country="US",
    )
    contacts = []
    if d.emergency_contact_name or d.emergency_contact_phone:
        contacts.append(_contact(b, "C", "Emergency Contact", d.emergency_contact_name,
                                 d.emergency_contact_phone, system_key="contact_role",
                                 relationship=d.emergency_contact_relationship))
    if d.sitter_name or d.sitter_phone:
        contacts.append(_contact(b, "sitter", "Sitter for home sessions", d.sitter_name,
                                 d.sitter_phone))
    extension = None
    if d.sex == "intersex":  # FHIR's gender has no such value; keep the chart's own word
        extension = [Extension(url=SEX_EXTENSION, valueCode="intersex")]
    return Patient(
        meta=b.meta("patient"),
        extension=extension,
        identifier=identifiers,
        name=[HumanName(use="official", family=d.last_name, given=given)],
        telecom=telecom or None,
        gender=_GENDER.get(d.sex, "unknown"),
        birthDate=d.dob,
        address=[address],
        contact=contacts or None,
    )


def _contact(
    b: _Builder, code: str, display: str, name: str, phone: str, *, system_key: str = "",
    relationship: str = "",
) -> PatientContact:
    """The role as a code; the relationship as the chart has it ("husband"), as text only."""
    system = b.codes.systems[system_key] if system_key else CONTACT_ROLE_SYSTEM
    concepts = [_coded_concept(system, code, display)]
    if relationship:
        concepts.append(CodeableConcept(text=relationship))
    return PatientContact(
        relationship=concepts,
        name=HumanName(text=name) if name else None,
        telecom=[ContactPoint(system="phone", value=phone)] if phone else None,
    )


def _condition(b: _Builder, line: ConditionLine) -> Condition:
    codings = None
    known = icd10cm_code(line.icd10) if line.icd10 else None
    if line.icd10:
        codings = [Coding(system=b.codes.systems["icd10cm"], code=line.icd10,
                          display=known.description if known else None)]
    status = "active" if line.is_active else "inactive"
    return Condition(
        meta=b.meta("condition"),
        clinicalStatus=b.coded("condition_clinical", status),
        category=[b.coded("condition_category", "problem-list-item", "Problem List Item")],
        code=CodeableConcept(coding=codings, text=line.entered_text),
        subject=b.subject(),
        recordedDate=line.recorded_at,
    )


def _medication(b: _Builder, line: MedicationLine) -> MedicationStatement:
    dosage = None
    if line.dose_text or line.frequency_text:
        timing = (
            Timing(code=CodeableConcept(text=line.frequency_text)) if line.frequency_text else None
        )
        dosage = [Dosage(text=line.dose_text or None, timing=timing)]
    return MedicationStatement(
        status="active" if line.is_active else "stopped",
        medicationCodeableConcept=CodeableConcept(text=line.entered_text),
        subject=b.subject(),
        effectivePeriod=Period(start=day(line.start_date)) if line.start_date else None,
        dateAsserted=line.recorded_at,
        dosage=dosage,
    )


def _vital_sign(b: _Builder, profile: str, concept: CodedConcept, when: datetime,
                **value: Any) -> Observation:
    return Observation(
        meta=b.meta(profile),
        status="final",
        category=[b.coded("observation_category", "vital-signs", "Vital Signs")],
        code=b.loinc(concept),
        subject=b.subject(),
        effectiveDateTime=when,
        **value,
    )


def _pressure_component(
    b: _Builder, concept: CodedConcept, value: int | None
) -> ObservationComponent:
    """A systolic or diastolic part (mmHg), "unknown" when missing; each distinct one is
    built once (pressures repeat across a practice)."""
    return _pressure_components(b.codes.loinc, concept, value)


@functools.lru_cache(maxsize=None, typed=True)
def _pressure_components(
    system: str, concept: CodedConcept, value: int | None
) -> ObservationComponent:
    codes = fhir_codes()
    code = _loinc_concept(system, concept.code, concept.display)
    if value is None:
        absent = _coded_concept(codes.systems["data_absent_reason"], "unknown", "Unknown")
        return shared(ObservationComponent(code=code, dataAbsentReason=absent))
    unit = codes.units["blood_pressure"]
    quantity = _quantity(value, unit.display, codes.systems["ucum"], unit.code)
    return shared(ObservationComponent(code=code, valueQuantity=quantity))


def _vitals(b: _Builder, line: VitalsLine) -> None:
    codes = b.codes
    if line.systolic is not None or line.diastolic is not None:
        components = [
            _pressure_component(b, concept, value)
            for concept, value in ((codes.systolic, line.systolic),
                                   (codes.diastolic, line.diastolic))
        ]
        b.add(b.url("bp", line.row_id), _vital_sign(
            b, "blood_pressure", codes.blood_pressure, line.measured_at, component=components
        ))
    if line.heart_rate is not None:
        b.add(b.url("hr", line.row_id), _vital_sign(
            b, "heart_rate", codes.heart_rate, line.measured_at,
            valueQuantity=b.quantity(line.heart_rate, "heart_rate"),
        ))
    if line.weight_kg is not None:
        b.add(b.url("weight", line.row_id), _vital_sign(
            b, "body_weight", codes.body_weight, line.measured_at,
            valueQuantity=b.quantity(line.weight_kg, "body_weight"),
        ))


@functools.cache
def _answer_concepts(system: str, points: int) -> CodeableConcept:
    answer = fhir_codes().answer_codes[points]
    return shared(CodeableConcept(coding=[_answer(system, answer.code, answer.display)]))


@functools.cache
def _response_item(
    system: str, link_id: str, prompt: str, points: int | None
) -> QuestionnaireResponseItem:
    """One answered (or blank) item: the same few dozen in every practice, built once."""
    answer = None
    if points is not None:
        coding = fhir_codes().answer_codes[points]
        answer = [QuestionnaireResponseItemAnswer(
            valueCoding=_answer(system, coding.code, coding.display)
        )]
    return shared(QuestionnaireResponseItem(linkId=link_id, text=prompt, answer=answer))


@functools.cache
def _answer_component(system: str, link_id: str, points: int) -> ObservationComponent:
    return shared(ObservationComponent(
        code=_bare_concept(system, link_id), valueCodeableConcept=_answer_concepts(system, points),
    ))


def _questionnaire(b: _Builder, form: QuestionnaireLine) -> None:
    codes = b.codes.instruments[form.instrument_id]
    instrument = load_instrument(form.instrument_id)
    response_url = b.url("questionnaire", form.row_id)
    loinc = b.codes.loinc
    items = [
        _response_item(loinc, link_id, item.prompt, points)
        for item, link_id, points in zip(instrument.items, codes.items, form.answers, strict=True)
    ]
    b.add(response_url, QuestionnaireResponse(
        meta=b.meta("questionnaire_response"),
        questionnaire=QUESTIONNAIRE_PREFIX + form.instrument_id,
        status="completed" if form.total is not None else "in-progress",
        subject=b.subject(),
        authored=day(form.taken_on),
        item=items,
    ))
    survey = [b.coded("observation_category", "survey", "Survey")]
    derived_from = [Reference(reference=response_url)]  # never changed: both may hold it
    members = None
    if form.total is not None:
        total_url = b.url("questionnaire-total", form.row_id)
        b.add(total_url, Observation(
            meta=b.meta("screening_assessment"), status="final", category=survey,
            code=b.loinc(codes.total), subject=b.subject(), effectiveDateTime=day(form.taken_on),
            valueQuantity=b.quantity(form.total, "score"),
            derivedFrom=derived_from,
        ))
        members = [Reference(reference=total_url)]
    components = [
        _answer_component(loinc, link_id, points)
        for link_id, points in zip(codes.items, form.answers, strict=True)
        if points is not None
    ]
    b.add(b.url("questionnaire-panel", form.row_id), Observation(
        meta=b.meta("screening_assessment"), status="final", category=survey,
        code=b.loinc(codes.panel), subject=b.subject(), effectiveDateTime=day(form.taken_on),
        hasMember=members, component=components or None,
        derivedFrom=derived_from,
    ))


def _session_words(protocol: Protocol, number: int, dose_mg: float, units: float,
                   events: Sequence[str]) -> str:
    amount = f"{units:g} {protocol.unit_name}"
    extra = f"; also due: {', '.join(events)}" if events else ""
    return f"Session {number}: ketamine {dose_mg:g} mg ({amount}){extra}"


def _signer(b: _Builder, user_name: str, full_name: str) -> Reference:
    """A physician by user name and full name (the export carries no Practitioner)."""
    return Reference(
        identifier=Identifier(system=user_system(b.context.practice_id), value=user_name),
        display=full_name or user_name,
    )


def prescription_status(status: str, refills: int, fills: int) -> str:
    """The MedicationRequest status of a prescription: a voided one is "cancelled" when
    nothing was dispensed and "stopped" when some of it was; an issued one is "completed"
    once the first fill and every refill were dispensed, else "active"."""
    if status == "void":
        return "stopped" if fills else "cancelled"
    return "completed" if fills > refills else "active"


def prescription_medication_text(line: PrescriptionLine) -> str:
    """The drug as the prescription names it: product and strength (mg per unit)."""
    return f"{line.product}, {line.strength_mg_per_unit:g} mg per {line.unit_name}"


def _prescription(b: _Builder, line: PrescriptionLine, signed_versions: set[int]) -> None:
    url = b.url("prescription", line.row_id)
    requester = _signer(b, line.prescriber, line.prescriber_full_name)
    based_on = None
    if line.protocol_version_id in signed_versions:
        based_on = [Reference(reference=b.url("careplan", line.protocol_version_id))]
    b.add(url, MedicationRequest(
        identifier=[Identifier(use="official", system=prescription_system(b.context.practice_id),
                               value=str(line.row_id))],
        status=prescription_status(line.status, line.refills, line.fills),
        intent="order",
        medicationCodeableConcept=CodeableConcept(text=prescription_medication_text(line)),
        subject=b.subject(),
        authoredOn=line.issued_at,
        requester=requester,
        basedOn=based_on,
        dosageInstruction=[Dosage(text=line.directions)],
        dispenseRequest=MedicationRequestDispenseRequest(
            quantity=Quantity(value=Decimal(str(line.quantity)), unit=line.unit_name),
            numberOfRepeatsAllowed=line.refills,
        ),
    ))
    b.add(b.url("prescription-provenance", line.row_id), Provenance(
        target=[Reference(reference=url)],
        recorded=line.issued_at,
        agent=[ProvenanceAgent(
            type=b.coded("provenance_participant", "author", "Author"), who=requester,
        )],
    ))


# Session days (a few thousand calendar days at most) and products repeat across a
# practice's plans: each is built once.
@functools.cache
def _one_day(when: date) -> Period:
    return shared(Period(start=day(when), end=day(when)))


@functools.cache
def _text_concept(text: str) -> CodeableConcept:
    return shared(CodeableConcept(text=text))


def _care_plan(b: _Builder, plan: SignedPlanLine) -> None:
    protocol = plan.protocol
    url = b.url("careplan", plan.version_id)
    activities = [
        CarePlanActivity(detail=CarePlanActivityDetail(
            kind="MedicationRequest",
            status="scheduled",
            description=_session_words(protocol, s.number, s.dose_mg, s.units, s.events),
            scheduledPeriod=_one_day(s.date),
            productCodeableConcept=_text_concept(f"ketamine {protocol.formulation}"),
            dailyAmount=b.quantity(s.dose_mg, "dose"),
        ))
        for s in dosing_calendar(protocol, plan.start_date, plan.weight_kg)
    ]
    signer = _signer(b, plan.signed_by, plan.signed_by_full_name)
    end = plan.start_date + timedelta(days=7 * protocol.duration_weeks)
    b.add(url, CarePlan(
        status="active" if plan.is_current else "revoked",
        intent="plan",
        title=f"Ketamine protocol, version {plan.number}",
        description=sig_text(protocol),
        subject=b.subject(),
        period=Period(start=day(plan.start_date), end=day(end)),
        created=plan.signed_at,
        author=signer,
        activity=activities or None,
    ))
    b.add(b.url("provenance", plan.version_id), Provenance(
        target=[Reference(reference=url)],
        recorded=plan.signed_at,
        agent=[ProvenanceAgent(
            type=b.coded("provenance_participant", "author", "Author"),
            who=signer,
        )],
    ))

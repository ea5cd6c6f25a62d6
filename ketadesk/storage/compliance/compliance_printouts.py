"""The consent form and the prescription as PDF bytes, built from the database and audited
(one event each, ids only). The caller writes the bytes (``core.private_files``)."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.models.patients import Patient
from ketadesk.reports.compliance_pdf import (
    ConsentForm,
    PatientLines,
    PracticeHeading,
    PrescriptionPrint,
    render_consent_form_pdf,
    render_prescription_pdf,
)
from ketadesk.storage.compliance.compliance_input import require_patient
from ketadesk.storage.compliance.consent import (
    consent_template,
    current_consent_template,
    ensure_consent_template,
)
from ketadesk.storage.compliance.prescriptions import get_prescription
from ketadesk.storage.practice.settings_store import get_setting
from ketadesk.storage.security.audit_log import record_event


def practice_heading(session: Session) -> PracticeHeading:
    return PracticeHeading(
        str(get_setting(session, "practice_name")),
        str(get_setting(session, "practice_address")),
        str(get_setting(session, "practice_phone")),
    )


def patient_lines(patient: Patient) -> PatientLines:
    name = " ".join(p for p in (patient.first_name, patient.middle_name, patient.last_name) if p)
    street = ", ".join(p for p in (patient.address_line1, patient.address_line2) if p)
    town = " ".join(p for p in (patient.city and f"{patient.city},", patient.state,
                                patient.zip_code) if p)
    address = ", ".join(p for p in (street, town) if p)
    return PatientLines(name, patient.dob, patient.mrn, address, patient.phone or "")


def consent_form_pdf(
    session: Session, actor: Actor, patient_id: int, *, today: date,
    template_id: int | None = None,
) -> bytes:
    """The consent form for the patient (the current template version unless one is given).
    Physicians and admins; audited."""
    require(actor, Permission.PRINT_CONSENT_FORM, "print a consent form")
    patient = require_patient(session, patient_id)
    ensure_consent_template(session, actor)
    template = (consent_template(session, template_id) if template_id is not None
                else current_consent_template(session))
    if template is None:
        raise UserFacingError("The practice has no consent text yet.")
    data = render_consent_form_pdf(ConsentForm(
        practice_heading(session), patient_lines(patient), template.title, template.version,
        template.paragraphs, template.is_example, template.example_notice, today,
    ))
    record_event(session, actor, audit_actions.CONSENT_FORM_PRINTED, patient_id=patient_id,
                 detail=f"consent form, template version {template.version}")
    return data


def prescription_pdf(session: Session, actor: Actor, prescription_id: int) -> bytes:
    """The printed prescription (voided ones carry VOID). Audited."""
    require(actor, Permission.EXPORT_PLANS, "print a prescription")
    rx = get_prescription(session, prescription_id)
    patient = require_patient(session, rx.patient_id)
    data = render_prescription_pdf(PrescriptionPrint(
        practice=practice_heading(session), patient=patient_lines(patient),
        prescription_id=rx.id, product=rx.product, strength=rx.strength_text,
        quantity=rx.quantity, unit_name=rx.unit_name, directions=rx.directions,
        refills=rx.refills, pharmacy=rx.pharmacy, issued_on=rx.issued_on,
        prescriber_full_name=rx.prescriber_full_name,
        prescriber_licence_number=rx.prescriber_licence_number,
        prescriber_dea_number=rx.prescriber_dea_number, remote=rx.remote,
        content_hash=rx.content_hash, is_void=rx.is_void, void_reason=rx.void_reason or "",
    ))
    record_event(session, actor, audit_actions.PRESCRIPTION_PRINTED, patient_id=rx.patient_id,
                 detail=f"prescription {rx.id}")
    return data

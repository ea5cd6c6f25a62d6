"""Informed consent: the practice's consent text as numbered template versions (the example
shipped with KetaDesk is installed as version 1 when there is none, marked as an example),
and each patient's signed consent with its version, date and how it was signed.

A new template version is never an edit: it is added, and patients who consented to an older
version are asked to consent again (the checklist warns, the worklist lists them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.consent_text import ConsentText, checked_consent_text, example_consent_text
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.models.compliance import ConsentRecord, ConsentTemplate
from ketadesk.storage.compliance.compliance_input import past_day, require_patient
from ketadesk.storage.compliance.compliance_records import (
    ConsentRecordInfo,
    ConsentTemplateInfo,
    consent_record_info,
    consent_template_info,
)
from ketadesk.storage.roster.roster_sql import is_server
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.content_signatures import (
    CONSENT_TEMPLATE,
    consent_template_hash,
    sign_content,
)

CONSENT_METHODS = ("paper", "on_screen")


def _add(session: Session, actor: Actor, text: ConsentText) -> ConsentTemplate:
    version = (session.execute(select(func.max(ConsentTemplate.version))).scalar() or 0) + 1
    row = ConsentTemplate(
        version=version,
        title=text.title,
        paragraphs_json=json.dumps(list(text.paragraphs), ensure_ascii=False),
        is_example=text.is_example,
        example_notice=text.example_notice,
        content_hash=consent_template_hash(
            version, text.title, list(text.paragraphs), text.is_example
        ),
        added_by=actor.user_name,
    )
    session.add(row)
    session.flush()
    if actor.is_physician:
        sign_content(session, actor, CONSENT_TEMPLATE, row.id, row.content_hash)
    record_event(
        session, actor, audit_actions.CONSENT_TEMPLATE_ADDED,
        detail=f"consent template version {version} (id {row.id})"
        + (" - example shipped with KetaDesk" if text.is_example else ""),
    )
    return row


def ensure_consent_template(session: Session, actor: Actor) -> None:
    """Install the shipped example as version 1 when the practice has no consent template.

    On a practice server only physicians may add consent text (the server refuses an admin's
    insert), so there the example waits for a physician to open the consents."""
    if not actor.is_physician and is_server(session):
        return
    if session.execute(select(ConsentTemplate.id).limit(1)).first() is None:
        _add(session, actor, example_consent_text())


def add_consent_template(
    session: Session, actor: Actor, title: str, paragraphs: Sequence[str]
) -> ConsentTemplateInfo:
    """Add the practice's own consent text as the next version (physicians only). Patients
    who signed an older version will be asked to consent again."""
    require(actor, Permission.EDIT_CLINICAL, "add a version of the consent")
    return consent_template_info(_add(session, actor, checked_consent_text(title, paragraphs)))


def consent_templates(session: Session) -> tuple[ConsentTemplateInfo, ...]:
    """Every consent template version, oldest first."""
    rows = session.execute(select(ConsentTemplate).order_by(ConsentTemplate.version)).scalars()
    return tuple(consent_template_info(r) for r in rows)


def current_consent_template(session: Session) -> ConsentTemplateInfo | None:
    row = session.execute(
        select(ConsentTemplate).order_by(ConsentTemplate.version.desc()).limit(1)
    ).scalar_one_or_none()
    return None if row is None else consent_template_info(row)


def consent_template(session: Session, template_id: int) -> ConsentTemplateInfo:
    row = session.get(ConsentTemplate, template_id)
    if row is None:
        raise UserFacingError(
            f"There is no consent template version {template_id}; list them with "
            "'consent templates'."
        )
    return consent_template_info(row)


def record_consent(
    session: Session,
    actor: Actor,
    patient_id: int,
    *,
    template_id: int,
    signed_on: date,
    method: str,
    today: date,
) -> ConsentRecordInfo:
    """Record that the patient signed consent template ``template_id`` on ``signed_on``
    (``method`` "paper" or "on_screen"). Physicians and admins."""
    require(actor, Permission.RECORD_CONSENT, "record an informed consent")
    require_patient(session, patient_id)
    if method not in CONSENT_METHODS:
        raise UserFacingError("Say how the consent was signed: on paper or on screen.")
    template = session.get(ConsentTemplate, template_id)
    if template is None:
        consent_template(session, template_id)  # raises the message
    past_day(signed_on, "The day the consent was signed", today)
    row = ConsentRecord(patient_id=patient_id, template_id=template_id, signed_on=signed_on,
                        method=method, recorded_by=actor.user_name)
    session.add(row)
    session.flush()
    assert template is not None
    record_event(
        session, actor, audit_actions.CONSENT_RECORDED, patient_id=patient_id,
        detail=f"consent {row.id}: template version {template.version}, signed "
        f"{signed_on.isoformat()} ({method})",
    )
    return consent_record_info(row)


def consents_of(session: Session, patient_id: int) -> tuple[ConsentRecordInfo, ...]:
    """The patient's consents, newest signature first."""
    rows = session.execute(
        select(ConsentRecord).where(ConsentRecord.patient_id == patient_id)
        .order_by(ConsentRecord.signed_on.desc(), ConsentRecord.id.desc())
    ).scalars()
    return tuple(consent_record_info(r) for r in rows)


def latest_consent(session: Session, patient_id: int) -> ConsentRecordInfo | None:
    found = consents_of(session, patient_id)
    return found[0] if found else None

"""The frozen views the compliance services return (no live ORM rows), and their JSON.

Screens and commands read these; times are aware UTC datetimes, dates are calendar days,
strength in mg per unit and quantities in units.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ketadesk.core.prescription_checks import CheckResult, CredentialKind, TelemedicineBasis
from ketadesk.models.compliance import (
    ConsentRecord,
    ConsentTemplate,
    PdmpCheck,
    PrescriberCredential,
    Prescription,
    PrescriptionFill,
    TelemedicineRecord,
)


@dataclass(frozen=True)
class CredentialInfo:
    id: int
    user_name: str
    kind: CredentialKind
    state: str
    number: str
    expires_on: date


def credential_info(row: PrescriberCredential) -> CredentialInfo:
    return CredentialInfo(row.id, row.user_name, CredentialKind(row.kind), row.state, row.number,
                          row.expires_on)


@dataclass(frozen=True)
class PdmpCheckInfo:
    """A recorded look-up. ``is_designee`` is true when an admin recorded it for a physician;
    ``result`` is the practice's own words, ``not_checked_reason`` why it was not done."""

    id: int
    patient_id: int
    state: str
    checked_at: datetime
    checked_by: str
    is_designee: bool
    result: str | None
    not_checked_reason: str | None

    @property
    def consulted(self) -> bool:
        return self.result is not None


def pdmp_check_info(row: PdmpCheck) -> PdmpCheckInfo:
    return PdmpCheckInfo(row.id, row.patient_id, row.state, row.checked_at, row.checked_by,
                         row.checked_by_role != "physician", row.result_text,
                         row.not_checked_reason)


@dataclass(frozen=True)
class ConsentTemplateInfo:
    """One version of the consent text; ``id`` is the version id the commands use."""

    id: int
    version: int
    title: str
    paragraphs: tuple[str, ...]
    is_example: bool
    example_notice: str
    content_hash: str
    added_by: str
    added_at: datetime


def consent_template_info(row: ConsentTemplate) -> ConsentTemplateInfo:
    return ConsentTemplateInfo(
        row.id, row.version, row.title, tuple(json.loads(row.paragraphs_json)), row.is_example,
        row.example_notice, row.content_hash, row.added_by, row.created_at,
    )


@dataclass(frozen=True)
class ConsentRecordInfo:
    id: int
    patient_id: int
    template_id: int
    template_version: int
    signed_on: date
    method: str  # "paper" | "on_screen"
    recorded_by: str


def consent_record_info(row: ConsentRecord) -> ConsentRecordInfo:
    return ConsentRecordInfo(row.id, row.patient_id, row.template_id, row.template.version,
                             row.signed_on, row.method, row.recorded_by)


@dataclass(frozen=True)
class TelemedicineInfo:
    id: int
    patient_id: int
    basis: TelemedicineBasis
    in_person_evaluation_on: date | None
    ends_on: date | None
    description: str
    recorded_by: str
    recorded_at: datetime


def telemedicine_info(row: TelemedicineRecord) -> TelemedicineInfo:
    return TelemedicineInfo(row.id, row.patient_id, TelemedicineBasis(row.basis),
                            row.in_person_evaluation_on, row.ends_on, row.description,
                            row.recorded_by, row.created_at)


@dataclass(frozen=True)
class FillInfo:
    fill_number: int  # 0 = first fill, 1... = refills
    filled_on: date
    quantity: float
    pharmacy: str
    recorded_by: str


@dataclass(frozen=True)
class PrescriptionInfo:
    """An issued (or voided) prescription with its fills and the checklist seen at issue."""

    id: int
    patient_id: int
    protocol_version_id: int
    product: str
    strength_mg_per_unit: float
    unit_name: str
    quantity: float
    directions: str
    refills: int
    pharmacy: str
    issued_at: datetime
    issued_on: date
    prescriber: str
    prescriber_full_name: str
    prescriber_dea_number: str
    prescriber_licence_number: str
    remote: bool
    checklist: tuple[CheckResult, ...]
    acknowledged_warnings: tuple[str, ...]
    content_hash: str
    status: str  # "issued" | "void"
    void_reason: str | None
    voided_by: str | None
    voided_at: datetime | None
    fills: tuple[FillInfo, ...]

    @property
    def is_void(self) -> bool:
        return self.status == "void"

    @property
    def refills_used(self) -> int:
        return max(0, len(self.fills) - 1)

    @property
    def refills_left(self) -> int:
        return self.refills - self.refills_used

    @property
    def strength_text(self) -> str:
        from ketadesk.core.protocols import number_text

        return f"{number_text(self.strength_mg_per_unit)} mg per {self.unit_name}"


def _checklist(text: str) -> tuple[CheckResult, ...]:
    from ketadesk.core.prescription_checks import CheckCode, CheckLevel

    return tuple(
        CheckResult(CheckCode(item["code"]), CheckLevel(item["level"]), item["message"],
                    item.get("rule_id"), item.get("source", ""))
        for item in json.loads(text or "[]")
    )


def checklist_json_text(results: tuple[CheckResult, ...]) -> str:
    return json.dumps([check_result_json(r) for r in results], ensure_ascii=False)


def check_result_json(result: CheckResult) -> dict[str, Any]:
    return {
        "code": str(result.code),
        "level": str(result.level),
        "message": result.message,
        "rule_id": result.rule_id,
        "source": result.source,
    }


def fill_info(row: PrescriptionFill) -> FillInfo:
    return FillInfo(row.fill_number, row.filled_on, row.quantity, row.pharmacy, row.recorded_by)


def prescription_info(row: Prescription) -> PrescriptionInfo:
    return PrescriptionInfo(
        id=row.id,
        patient_id=row.patient_id,
        protocol_version_id=row.protocol_version_id,
        product=row.product,
        strength_mg_per_unit=row.strength_mg_per_unit,
        unit_name=row.unit_name,
        quantity=row.quantity,
        directions=row.directions,
        refills=row.refills,
        pharmacy=row.pharmacy,
        issued_at=row.issued_at,
        issued_on=row.issued_on,
        prescriber=row.prescriber,
        prescriber_full_name=row.prescriber_full_name,
        prescriber_dea_number=row.prescriber_dea_number,
        prescriber_licence_number=row.prescriber_licence_number,
        remote=row.remote,
        checklist=_checklist(row.checklist_json),
        acknowledged_warnings=tuple(json.loads(row.acknowledged_warnings_json or "[]")),
        content_hash=row.content_hash,
        status=row.status,
        void_reason=row.void_reason,
        voided_by=row.voided_by,
        voided_at=row.voided_at,
        fills=tuple(fill_info(f) for f in row.fills),
    )


def prescription_json(info: PrescriptionInfo) -> dict[str, Any]:
    """A prescription as plain JSON values (``rx list --json``)."""
    return {
        "id": info.id,
        "status": info.status,
        "issued_at": info.issued_at.isoformat(),
        "issued_on": info.issued_on.isoformat(),
        "product": info.product,
        "strength": info.strength_text,
        "strength_mg_per_unit": info.strength_mg_per_unit,
        "unit": info.unit_name,
        "quantity": info.quantity,
        "directions": info.directions,
        "refills": info.refills,
        "refills_used": info.refills_used,
        "pharmacy": info.pharmacy,
        "prescriber": info.prescriber,
        "prescriber_full_name": info.prescriber_full_name,
        "remote": info.remote,
        "protocol_version_id": info.protocol_version_id,
        "acknowledged_warnings": list(info.acknowledged_warnings),
        "void_reason": info.void_reason,
        "voided_by": info.voided_by,
        "fills": [
            {"fill": f.fill_number, "filled_on": f.filled_on.isoformat(), "quantity": f.quantity,
             "pharmacy": f.pharmacy}
            for f in info.fills
        ],
        "checklist": [check_result_json(r) for r in info.checklist],
    }

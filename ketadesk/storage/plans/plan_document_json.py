"""A PlanDocument as JSON and back, for storing the exact document a signed plan was rendered
from (``SignedPlanContent.document_json``): numbers exact, dates ISO."""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from typing import Any

from ketadesk.core.date_styles import DAY_MONTH_ABBREVIATED
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
            emergency_contact_relationship=pt.get("emergency_contact_relationship"),
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
                ReviewFlag(f["severity"], f["title"], f["decision"], f.get("patient_note"))
                for f in d["review"]["flags"]
            ),
            not_checked=tuple(d["review"]["not_checked"]),
            reviewed_on=_opt_date(d["review"].get("reviewed_on")),
            signed_by=d["review"].get("signed_by"),
            read_by_physician=tuple(d["review"].get("read_by_physician", ())),
        ),
        signed_by=d.get("signed_by"),
        signed_at=datetime.fromisoformat(signed_at) if signed_at else None,
        is_draft=d["is_draft"],
        # A plan stored before the practice chose a date style was printed as "2 Dec 2026".
        date_style=d.get("date_style", DAY_MONTH_ABBREVIATED),
    )

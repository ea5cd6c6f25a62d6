"""The signed snapshot of an interaction review: what is stored at signing and how it is read.

At signing, the review as the physician saw it (lines as typed and read, conditions, vitals,
flags with sources, what was not checked) is stored as JSON on the review row. A signed review
is always shown from that snapshot, never re-run, so it reads the same after the chart or the
knowledge base changes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core.interaction_check import age_band
from ketadesk.models.interaction_reviews import InteractionReview
from ketadesk.storage.reviews.interaction_review_inputs import VitalsUsed
from ketadesk.storage.reviews.interaction_review_views import (
    ConditionLineView,
    DecisionView,
    MedicationLineView,
    ReviewDraftView,
    decision_view,
)

_SNAPSHOT_FORMAT = 1


@dataclass(frozen=True)
class SnapshotSource:
    title: str
    section: str
    link: str | None


@dataclass(frozen=True)
class SnapshotFlag:
    """A flag exactly as it was signed (from the stored snapshot, not re-run)."""

    rule_id: str
    severity: str
    kind: str
    drug: str | None
    drug_class: str
    title: str
    effect: str
    management: str
    entered_as: str
    carry_forward_key: str
    sources: tuple[SnapshotSource, ...]
    decision: DecisionView | None


@dataclass(frozen=True)
class SignedReview:
    """The latest signed review as stored: what was checked, found, decided and by whom.

    ``not_checked`` lists medication lines and conditions not recognised, and unread vitals;
    ``read_by_physician`` those of them the signer confirmed having read (reviews signed
    before this confirmation existed have none).
    ``vitals`` is None when no vitals were used (see ``vitals_not_checked``).
    """

    review_id: int
    patient_id: int
    signed_at: datetime
    signed_by: str
    signed_by_full_name: str
    kb_version: str
    fingerprint: str
    medication_lines: tuple[MedicationLineView, ...]
    conditions: tuple[ConditionLineView, ...]
    vitals: VitalsUsed | None
    vitals_not_checked: str | None
    pregnant: bool
    flags: tuple[SnapshotFlag, ...]
    not_checked: tuple[str, ...]
    benzodiazepine_load: str | None
    decisions: tuple[DecisionView, ...]
    read_by_physician: tuple[str, ...] = ()


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _when(text: str | None) -> datetime | None:
    # Snapshots signed before each vital kept its own date have no per-vital times.
    return None if not text else datetime.fromisoformat(text)


def snapshot_of(
    view: ReviewDraftView, read_by_physician: Sequence[str] = ()
) -> dict[str, Any]:
    """The snapshot to store at signing (JSON-ready) of the review as shown, with the
    not-checked items the physician confirmed having read."""
    inputs = view.inputs
    used = inputs.latest_vitals
    load = view.result.benzodiazepine_load
    return {
        "format": _SNAPSHOT_FORMAT,
        "kb_version": view.result.kb_version,
        "medication_lines": [
            {
                "entered_as": line.entered_as,
                "generics": list(line.generics),
                "matched_name": line.matched_name,
                "fuzzy": line.fuzzy,
                "unit_assumed": line.unit_assumed,
                "unit": line.unit,
                "route": line.route,
                "route_word": line.route_word,
            }
            for line in view.medication_lines
        ],
        "conditions": [
            {
                "entered_as": c.entered_as,
                "concept_name": c.concept_name,
                "read_as": c.read_as_text,
                "unread": list(c.unread),
            }
            for c in view.condition_lines
        ],
        "vitals": None
        if used is None
        else {
            "measured_at": used.measured_at.isoformat(),
            "bp_measured_at": _iso(used.bp_measured_at),
            "heart_rate_measured_at": _iso(used.heart_rate_measured_at),
            "weight_measured_at": _iso(used.weight_measured_at),
            "systolic": used.systolic,
            "diastolic": used.diastolic,
            "heart_rate": used.heart_rate,
            "weight_kg": used.weight_kg,
        },
        "vitals_used": inputs.vitals is not None,
        "vitals_not_checked": inputs.vitals_not_checked,
        "pregnant": inputs.pregnant,
        "age_band": age_band(inputs.age_years),
        "flags": [
            {
                "rule_id": f.flag.rule_id,
                "severity": f.flag.severity,
                "kind": f.flag.kind,
                "drug": f.flag.drug,
                "class": f.flag.drug_class,
                "title": f.flag.title,
                "effect": f.flag.effect,
                "management": f.flag.management,
                "entered_as": f.flag.entered_as,
                "carry_forward_key": f.flag.carry_forward_key,
                "sources": [
                    {"title": s.title, "section": s.section, "link": s.link}
                    for s in f.flag.sources
                ],
            }
            for f in view.flags
        ],
        "unrecognized": list(view.result.unrecognized),
        "not_checked": list(view.not_checked),
        "read_by_physician": list(read_by_physician),
        "benzodiazepine_load": None if load is None else load.summary(),
    }


def stored_snapshot(text: str | None) -> dict[str, Any]:
    """The stored snapshot JSON as a dict; an unreadable snapshot reads as empty."""
    try:
        data = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def snapshot_for_comparison(text: str) -> dict[str, Any]:
    """The stored snapshot with line entries as their typed text (for the stale comparison);
    an unreadable snapshot reads as empty."""
    data = stored_snapshot(text)
    # Snapshot line entries are objects; the stale comparison wants the typed text.
    for key in ("medication_lines", "conditions"):
        data[key] = [
            item["entered_as"] if isinstance(item, dict) else str(item)
            for item in data.get(key, [])
        ]
    return data


def latest_signed_row(session: Session, patient_id: int) -> InteractionReview | None:
    """The patient's newest signed review row, or None."""
    return session.execute(
        select(InteractionReview)
        .where(InteractionReview.patient_id == patient_id, InteractionReview.status == "signed")
        .order_by(InteractionReview.signed_at.desc(), InteractionReview.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def latest_signed_review(session: Session, patient_id: int) -> SignedReview | None:
    """The newest signed review as it was signed (snapshot), or None when there is none."""
    row = latest_signed_row(session, patient_id)
    if row is None:
        return None
    assert row.signed_at is not None and row.signed_by is not None
    data = json.loads(row.snapshot_json or "{}")
    decisions = {d.carry_forward_key: decision_view(d) for d in row.decisions}
    vitals = data.get("vitals")
    return SignedReview(
        review_id=row.id,
        patient_id=patient_id,
        signed_at=row.signed_at,
        signed_by=row.signed_by,
        signed_by_full_name=row.signed_by_full_name or row.signed_by,
        kb_version=row.kb_version,
        fingerprint=row.fingerprint,
        medication_lines=tuple(
            MedicationLineView(
                entered_as=m["entered_as"],
                generics=tuple(m.get("generics", ())),
                matched_name=m.get("matched_name"),
                fuzzy=bool(m.get("fuzzy")),
                unit_assumed=bool(m.get("unit_assumed")),
                unit=m.get("unit"),
                route=m.get("route", "systemic"),
                route_word=m.get("route_word"),
            )
            for m in data.get("medication_lines", [])
        ),
        conditions=tuple(
            ConditionLineView(
                c["entered_as"], c.get("concept_name"), c.get("read_as", ""),
                tuple(c.get("unread", ())),
            )
            for c in data.get("conditions", [])
        ),
        vitals=None
        if vitals is None or not data.get("vitals_used", True)
        else VitalsUsed(
            datetime.fromisoformat(vitals["measured_at"]),
            vitals.get("systolic"),
            vitals.get("diastolic"),
            vitals.get("heart_rate"),
            vitals.get("weight_kg"),
            _when(vitals.get("bp_measured_at")),
            _when(vitals.get("heart_rate_measured_at")),
            _when(vitals.get("weight_measured_at")),
        ),
        vitals_not_checked=data.get("vitals_not_checked"),
        pregnant=bool(data.get("pregnant")),
        flags=tuple(
            SnapshotFlag(
                rule_id=f["rule_id"],
                severity=f["severity"],
                kind=f["kind"],
                drug=f.get("drug"),
                drug_class=f.get("class", ""),
                title=f["title"],
                effect=f.get("effect", ""),
                management=f.get("management", ""),
                entered_as=f.get("entered_as", ""),
                carry_forward_key=f["carry_forward_key"],
                sources=tuple(
                    SnapshotSource(s["title"], s.get("section", ""), s.get("link"))
                    for s in f.get("sources", [])
                ),
                decision=decisions.get(f["carry_forward_key"]),
            )
            for f in data.get("flags", [])
        ),
        not_checked=tuple(data.get("not_checked", [])),
        benzodiazepine_load=data.get("benzodiazepine_load"),
        decisions=tuple(decisions.values()),
        read_by_physician=tuple(data.get("read_by_physician", [])),
    )

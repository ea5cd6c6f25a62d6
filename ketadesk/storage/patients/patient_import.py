"""Writing a checked roster CSV (``core.patient_csv.CsvImportPlan``) into the database.

All or nothing: every patient is written inside the caller's one transaction, so an error,
a cancelled progress callback or a crash part-way leaves the database exactly as it was.
A plan with bad rows imports nothing unless ``skip_invalid`` is chosen. Rows that look like
patients already stored (same folded name and date of birth) are reported, and imported
only when ``import_duplicates`` says so; nothing is ever merged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.mrn import format_mrn, is_valid_mrn, mrn_sequence_number
from ketadesk.core.patient_csv import CsvImportPlan, CsvRow, duplicate_key
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.models.patients import Patient, VitalSign
from ketadesk.storage.patients.patients import existing_duplicate_keys, next_mrn
from ketadesk.storage.roster.roster_status import mark_patients_changed
from ketadesk.storage.security.audit_log import record_event

IMPORT_BATCH = 100
ProgressCallback = Callable[[int, int], bool | None]
"""Called as progress(done, total); returning False cancels (and rolls back) the import."""


class ImportCancelledError(UserFacingError):
    def __init__(self) -> None:
        super().__init__("The import was cancelled; no patients were added.")


@dataclass(frozen=True)
class ExistingDuplicate:
    """A file row that matches a stored patient (same folded name and date of birth)."""

    row_number: int
    existing_mrn: str


@dataclass(frozen=True)
class ImportResult:
    """What happened: counts, skipped bad rows, duplicates of stored patients, new MRNs."""

    imported: int
    skipped_invalid_rows: tuple[int, ...]
    duplicates_of_existing: tuple[ExistingDuplicate, ...]
    skipped_duplicate_rows: tuple[int, ...]
    new_mrns: tuple[str, ...]
    dry_run: bool = False


def duplicates_of_existing(session: Session, plan: CsvImportPlan) -> list[ExistingDuplicate]:
    """Return the plan's good rows that match patients already stored."""
    known = existing_duplicate_keys(session)
    found: list[ExistingDuplicate] = []
    for row in plan.rows:
        d = row.demographics
        if d.dob is None:
            continue
        mrn = known.get(duplicate_key(d.first_name, d.last_name, d.dob))
        if mrn is not None:
            found.append(ExistingDuplicate(row.row_number, mrn))
    return found


def _patient_values(row: CsvRow, mrn: str, now: datetime) -> dict[str, object]:
    from ketadesk.core.search_text import fold_for_search

    d = row.demographics
    return {
        "mrn": mrn,
        "external_id": row.external_id[:64] if row.external_id else None,
        "first_name": d.first_name,
        "middle_name": d.middle_name or None,
        "last_name": d.last_name,
        "first_name_folded": fold_for_search(d.first_name),
        "last_name_folded": fold_for_search(d.last_name),
        "dob": d.dob,
        "sex": d.sex,
        "phone": d.phone or None,
        "phone_digits": "".join(ch for ch in d.phone if ch.isdigit()),
        "email": d.email or None,
        "address_line1": d.address_line1 or None,
        "address_line2": d.address_line2 or None,
        "city": d.city or None,
        "state": d.state,
        "zip_code": d.zip or None,
        "county": d.county or None,
        "emergency_contact_name": d.emergency_contact_name or None,
        "emergency_contact_phone": d.emergency_contact_phone or None,
        "emergency_contact_relationship": d.emergency_contact_relationship or None,
        "sitter_name": d.sitter_name or None,
        "sitter_phone": d.sitter_phone or None,
        "status": "screening",
        "pregnant": False,
        "created_at": now,
        "updated_at": now,
    }


def import_patients(
    session: Session,
    actor: Actor,
    plan: CsvImportPlan,
    *,
    skip_invalid: bool = False,
    import_duplicates: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    now: datetime | None = None,
) -> ImportResult:
    """Add the plan's patients inside the caller's transaction (all or nothing).

    Raises UserFacingError when the plan has bad rows and ``skip_invalid`` is False, when a
    KetaDesk MRN in the file is already used, or when ``progress`` returns False (cancelled).
    Rows matching stored patients are skipped unless ``import_duplicates``. With ``dry_run``
    nothing is written, but the result says what would happen. Weights (kg) become vitals.
    """
    require(actor, Permission.EDIT_DEMOGRAPHICS, "import patients")
    if plan.has_problems and not skip_invalid:
        bad = len(plan.invalid_row_numbers)
        raise UserFacingError(
            f"{bad} row{'s' if bad != 1 else ''} of the file have problems, so nothing was "
            "imported. Fix them, or choose to import only the valid rows."
        )
    now = now or datetime.now(UTC)
    existing = duplicates_of_existing(session, plan)
    duplicate_rows = {d.row_number for d in existing}
    rows = [r for r in plan.rows if import_duplicates or r.row_number not in duplicate_rows]

    given = [r.mrn for r in rows if r.mrn]
    if len(set(given)) != len(given):
        raise UserFacingError("Two rows of the file carry the same MRN; nothing was imported.")
    if given:
        taken = set(session.execute(select(Patient.mrn).where(Patient.mrn.in_(given))).scalars())
        if taken:
            raise UserFacingError(
                f"{len(taken)} MRN(s) in the file already belong to patients in KetaDesk "
                f"({', '.join(sorted(taken)[:5])}); nothing was imported."
            )
    first_new = next_mrn(session)
    number = mrn_sequence_number(first_new)
    highest_given = max((mrn_sequence_number(m) for m in given if is_valid_mrn(m)), default=0)
    number = max(number, highest_given + 1)

    mrns: list[str] = []
    total = len(rows)
    batch: list[tuple[CsvRow, dict[str, object]]] = []

    def flush_batch() -> None:
        if dry_run or not batch:
            batch.clear()
            return
        ids = (
            session.execute(insert(Patient).returning(Patient.id), [values for _, values in batch])
            .scalars()
            .all()
        )
        mark_patients_changed(session, ids)
        vitals = [
            {
                "patient_id": patient_id,
                "measured_at": now,
                "weight_kg": row.weight_kg,
                "entered_by": actor.user_name,
            }
            for (row, _), patient_id in zip(batch, ids, strict=True)
            if row.weight_kg is not None
        ]
        if vitals:
            session.execute(insert(VitalSign), vitals)
        batch.clear()

    for done, row in enumerate(rows, start=1):
        if row.mrn:
            mrn = row.mrn
        else:
            mrn = format_mrn(number)
            number += 1
        mrns.append(mrn)
        batch.append((row, _patient_values(row, mrn, now)))
        if len(batch) >= IMPORT_BATCH:
            flush_batch()
        if progress is not None and (done % 100 == 0 or done == total):
            if progress(done, total) is False:
                raise ImportCancelledError()
    flush_batch()
    if not dry_run:
        record_event(
            session,
            actor,
            audit_actions.PATIENTS_IMPORTED,
            detail=(
                f"{total} patients imported from CSV; {len(plan.invalid_row_numbers)} invalid "
                f"and {len(duplicate_rows) if not import_duplicates else 0} duplicate rows skipped"
            ),
        )
    return ImportResult(
        imported=total,
        skipped_invalid_rows=plan.invalid_row_numbers,
        duplicates_of_existing=tuple(existing),
        skipped_duplicate_rows=tuple(sorted(duplicate_rows)) if not import_duplicates else (),
        new_mrns=tuple(mrns),
        dry_run=dry_run,
    )


def external_id_for(session: Session, patient_id: int) -> str | None:
    """Another system's record number for this patient, kept from a roster import (or None)."""
    return session.execute(
        select(Patient.external_id).where(Patient.id == patient_id)
    ).scalar_one_or_none()

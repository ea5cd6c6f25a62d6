"""The whole practice in one folder, for a practice that leaves: ``export-practice``.

The folder holds every patient's FHIR bundle (``fhir/``), every signed plan as printed
(``plans/``, re-rendered from the stored plan documents), the audit trail as CSV, the users
without any secret (no password hashes, keys or recovery data) and ``manifest.json`` with the
SHA-256 of every file. Only a user who manages users may make it; it is audited as one event
carrying counts.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.core.csv_safety import spreadsheet_safe
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.core.private_files import make_private_folder, write_private_bytes
from ketadesk.models.audit import AuditEvent
from ketadesk.models.patients import Patient
from ketadesk.models.plan_exports import SignedPlanContent
from ketadesk.models.protocols import PatientProtocol, ProtocolVersion
from ketadesk.reports.plan_pdf import render_plan_pdf
from ketadesk.storage.interchange.fhir_export import (
    Progress,
    all_patient_ids,
    export_patient_bundles,
)
from ketadesk.storage.plans.plan_document_builder import practice_database_id
from ketadesk.storage.plans.plan_document_json import plan_document_from_json
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.users import list_users, users_as_stored

if TYPE_CHECKING:
    from ketadesk.storage.server.server_practice import ServerPractice

AUDIT_HEADERS = ("seq", "occurred_at", "user_name", "role", "patient_mrn", "action", "detail",
                 "prev_hash", "row_hash", "signed_by", "signature")
USER_HEADERS = ("user_name", "full_name", "role", "manages_users", "active", "npi",
                "dea_number", "licence_states")


@dataclass(frozen=True)
class PracticeExportSummary:
    patients: int
    resources: int
    plans: int
    audit_events: int
    users: int
    files: int
    manifest: Path


def _csv_bytes(headers: tuple[str, ...], rows: list[tuple[object, ...]]) -> bytes:
    handle = io.StringIO(newline="")
    writer = csv.writer(handle)
    writer.writerow(headers)
    writer.writerows([spreadsheet_safe(cell) for cell in row] for row in rows)
    return handle.getvalue().encode("utf-8")


def _check_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise UserFacingError(f"{folder.name} is a file; choose an empty folder for the export.")
    if folder.is_dir() and any(folder.iterdir()):
        raise UserFacingError(
            f"The folder {folder.name} is not empty; choose an empty folder so that nothing "
            "already there is replaced or mixed in."
        )


def export_practice(
    database: PracticeDatabase | ServerPractice, actor: Actor, folder: Path, *,
    progress: Progress | None = None, workers: int = 2,
) -> PracticeExportSummary:
    """Write the practice export into ``folder`` (new or empty); see the module docstring.
    On a practice server everything is read with the user's own grants."""
    require(actor, Permission.MANAGE_USERS, "export the whole practice")
    _check_folder(folder)
    make_private_folder(folder)
    written: list[Path] = []
    with database.session() as session:
        ids = all_patient_ids(session)
        bundles = export_patient_bundles(
            session, actor, ids, folder / "fhir", progress=progress, audit=False, workers=workers
        )
        written.extend(bundles.files)
        plans = session.execute(
            select(SignedPlanContent, ProtocolVersion.number, Patient.mrn)
            .join(ProtocolVersion, SignedPlanContent.protocol_version_id == ProtocolVersion.id)
            .join(PatientProtocol, ProtocolVersion.protocol_id == PatientProtocol.id)
            .join(Patient, PatientProtocol.patient_id == Patient.id)
            .order_by(Patient.mrn, ProtocolVersion.number, SignedPlanContent.id)
        ).all()
        if plans:
            make_private_folder(folder / "plans")
        for content, number, mrn in plans:
            pdf = render_plan_pdf(plan_document_from_json(content.document_json))
            target = folder / "plans" / f"{mrn}-v{number}-{content.content_hash[:12]}.pdf"
            write_private_bytes(target, pdf)
            written.append(target)
        events = session.execute(
            select(AuditEvent, Patient.mrn)
            .outerjoin(Patient, AuditEvent.patient_id == Patient.id)
            .order_by(AuditEvent.seq)
        ).all()
        audit_rows: list[tuple[object, ...]] = [
            (e.seq, e.occurred_at.isoformat(), e.user_name, e.role, mrn or "", e.action,
             e.detail, e.prev_hash, e.row_hash, e.signed_by or "", e.signature or "")
            for e, mrn in events
        ]
        practice_id = practice_database_id(session)
    target = folder / "audit-trail.csv"
    write_private_bytes(target, _csv_bytes(AUDIT_HEADERS, audit_rows))
    written.append(target)
    if isinstance(database, PracticeDatabase):
        users = list_users(database)
    else:
        with database.read_session() as session:
            users = users_as_stored(session)
    user_rows: list[tuple[object, ...]] = [
        (u.user_name, u.full_name, str(u.role), u.can_manage_users, u.is_active, u.npi or "",
         u.dea_number or "", " ".join(u.licence_states))
        for u in users
    ]
    target = folder / "users.csv"
    write_private_bytes(target, _csv_bytes(USER_HEADERS, user_rows))
    written.append(target)
    manifest = {
        "format": "KetaDesk practice export 1",
        "practice_id": practice_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "exported_by": actor.user_name,
        "counts": {"patients": bundles.patients, "fhir_resources": bundles.resources,
                   "plans": len(plans), "audit_events": len(audit_rows), "users": len(users)},
        "files": [
            {"path": path.relative_to(folder).as_posix(), "bytes": path.stat().st_size,
             "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
            for path in written
        ],
    }
    manifest_path = folder / "manifest.json"
    write_private_bytes(manifest_path, json.dumps(manifest, indent=2).encode("utf-8"))
    with database.session() as session:
        record_event(
            session, actor, audit_actions.PRACTICE_EXPORTED,
            detail=(f"{bundles.patients} patients, {bundles.resources} resources, "
                    f"{len(plans)} plans, {len(audit_rows)} audit events, {len(users)} users"),
        )
    return PracticeExportSummary(bundles.patients, bundles.resources, len(plans), len(audit_rows),
                                 len(users), len(written) + 1, manifest_path)

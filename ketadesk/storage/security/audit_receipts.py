"""Signed audit checkpoints kept outside the insider's reach: a small "audit receipt" in a second
folder the practice chooses (a backup drive, another computer's share) and a copy beside each
backup. A database or key file rolled back behind a receipt is named at log-in.

A checkpoint is the newest audit event's number and hash, the key generation and the time,
signed by the user who closed the database (their Ed25519 key). Receipts only move forward.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core.private_files import make_private_folder, write_private_bytes
from ketadesk.core.settings import SettingSpec, register_setting
from ketadesk.models.audit import AuditEvent
from ketadesk.models.practice import PracticeSetting
from ketadesk.storage.security.grants import GrantCheck
from ketadesk.storage.security.signing_keys import Signer, signature_is_valid

RECEIPT_FOLDER_SETTING = "audit_receipt_folder"
register_setting(
    SettingSpec(
        RECEIPT_FOLDER_SETTING,
        "Folder for audit receipts (a backup drive or another computer; empty: none)",
        "",
    )
)


@dataclass(frozen=True)
class Checkpoint:
    database_id: str
    seq: int
    row_hash: str
    generation: int
    written_at: str
    signed_by: str
    signature: str

    def message(self) -> bytes:
        content = {
            "kind": "audit_checkpoint",
            "database_id": self.database_id,
            "seq": self.seq,
            "row_hash": self.row_hash,
            "generation": self.generation,
            "written_at": self.written_at,
            "signed_by": self.signed_by,
        }
        return json.dumps(content, sort_keys=True, separators=(",", ":")).encode("ascii")

    def is_signed_by_granted_key(self, grants: GrantCheck) -> bool:
        return any(
            signature_is_valid(key, self.message(), self.signature)
            for key in grants.verifying_keys().get(self.signed_by, ())
        )


def receipt_folder(session: Session) -> Path | None:
    row = session.get(PracticeSetting, RECEIPT_FOLDER_SETTING)
    if row is None:
        return None
    try:
        value = json.loads(row.value_json)
    except ValueError:
        return None
    return Path(value).expanduser() if isinstance(value, str) and value.strip() else None


def make_checkpoint(
    session: Session, signer: Signer, database_id: str, generation: int
) -> Checkpoint | None:
    newest = session.execute(
        select(AuditEvent.seq, AuditEvent.row_hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    if newest is None:
        return None
    unsigned = Checkpoint(
        database_id,
        int(newest[0]),
        str(newest[1]),
        generation,
        datetime.now(UTC).isoformat(timespec="seconds"),
        signer.user_name,
        "",
    )
    return Checkpoint(**{**asdict(unsigned), "signature": signer.sign(unsigned.message())})


def receipt_path(folder: Path, database_id: str) -> Path:
    return folder / f"ketadesk-{database_id}.audit-receipt.json"


def read_checkpoint(path: Path) -> Checkpoint | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Checkpoint(
            database_id=str(raw["database_id"]),
            seq=int(raw["seq"]),
            row_hash=str(raw["row_hash"]),
            generation=int(raw["generation"]),
            written_at=str(raw["written_at"]),
            signed_by=str(raw["signed_by"]),
            signature=str(raw["signature"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Write atomically (temp name in the same folder, then rename); never backwards."""
    existing = read_checkpoint(path)
    if existing is not None and existing.database_id == checkpoint.database_id:
        if (existing.seq, existing.generation) >= (checkpoint.seq, checkpoint.generation):
            return
    make_private_folder(path.parent)
    write_private_bytes(path, json.dumps(asdict(checkpoint), indent=1).encode("utf-8"))


def rollback_problem(session: Session, checkpoint: Checkpoint, where: str) -> str | None:
    """Why the open database is behind ``checkpoint`` (None when it holds that event)."""
    stored = session.execute(
        select(AuditEvent.row_hash).where(AuditEvent.seq == checkpoint.seq)
    ).scalar_one_or_none()
    if stored == checkpoint.row_hash:
        return None
    if stored is None:
        return (
            f"the audit receipt in {where} records event {checkpoint.seq} (signed by "
            f"{checkpoint.signed_by} at {checkpoint.written_at}), which this database does not "
            "have: the database or its key file was rolled back to an earlier copy"
        )
    return (
        f"event {checkpoint.seq} differs from the one the audit receipt in {where} records "
        f"(signed by {checkpoint.signed_by} at {checkpoint.written_at}): the trail was rewritten"
    )

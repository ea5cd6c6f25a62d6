"""Saving a protocol draft over someone else's save: refused, never silent.

A form remembers the version it showed (the newest version of the active protocol: its id and
row version, ``version_mark``) and names it when saving. If another workstation saved the
draft, signed it, or started a protocol meanwhile, the save is refused with
``DraftChangedError``, carrying that version as stored now and who saved it and when (from the
audit trail: a draft row keeps only its creator), so the physician can compare and merge
(``core/edit_conflicts``) and save again over the new version.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.edit_conflicts import RecordChangedError
from ketadesk.core.errors import UserFacingError
from ketadesk.models.protocols import PatientProtocol, ProtocolVersion
from ketadesk.storage.protocols.protocol_versions import ProtocolVersionInfo, version_info
from ketadesk.storage.security.record_authors import full_name_of, last_saver

#: A version id and its row version: what a protocol form was loaded from.
VersionMark = tuple[int, int]
#: The form showed no protocol (the patient had none active): a new one is started.
NO_VERSION_SHOWN: VersionMark = (0, 0)

_SAVED = (audit_actions.PROTOCOL_DRAFT_CREATED, audit_actions.PROTOCOL_DRAFT_SAVED)


class DraftChangedError(RecordChangedError):
    """Someone saved (or signed) this patient's protocol after it was opened here;
    ``current`` is the newest version as stored now."""

    def __init__(
        self, current: ProtocolVersionInfo, changed_by: str | None, changed_at: datetime
    ) -> None:
        self.current = current
        did = "signed" if current.is_signed else "saved"
        super().__init__(
            f"{changed_by or 'Someone else'} {did} this protocol while you were editing it. "
            "Nothing you typed was saved yet; compare the two and choose what to keep.",
            changed_by,
            changed_at,
        )


def version_mark(version: ProtocolVersionInfo | None) -> VersionMark:
    """The mark a save names for a form loaded from ``version`` (None: no protocol shown)."""
    return NO_VERSION_SHOWN if version is None else (version.version_id, version.row_version)


def draft_changed(session: Session, patient_id: int, row: ProtocolVersion) -> DraftChangedError:
    """The error for a save that met ``row`` (the newest version as stored now)."""
    if row.status == "signed" and row.signed_at is not None:
        who = row.signed_by_full_name or full_name_of(session, row.signed_by)
        return DraftChangedError(version_info(row, patient_id), who, row.signed_at)
    who = last_saver(session, patient_id, _SAVED,
                     f"protocol {row.protocol_id} version {row.number};")
    return DraftChangedError(version_info(row, patient_id), who, row.updated_at)


def refuse_if_changed(
    session: Session, patient_id: int, parent: PatientProtocol | None,
    expected: VersionMark | None,
) -> None:
    """Raise DraftChangedError when the newest version of ``parent`` (the active protocol) is
    not the one the form showed (``expected``; None: the caller does not check)."""
    if expected is None:
        return
    latest = parent.versions[-1] if parent is not None and parent.versions else None
    if latest is None:
        if expected != NO_VERSION_SHOWN:
            raise UserFacingError(
                "This protocol was discontinued on another computer while you were editing "
                "it. Nothing was saved; what you typed is still here."
            )
        return
    if (latest.id, latest.version) != expected:
        raise draft_changed(session, patient_id, latest)

"""Signed role grants, the signed allow-list of key slots, and physicians' content signatures.

Every user has an Ed25519 key pair; the private half lives only inside that user's key slots.
A grant (role, permissions, public key) counts only when signed by a user with manage_users
(the first physician's grant is self-signed and pinned inside every slot); a key slot opens the
database only when it is on the signed allow-list.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ketadesk.models.base import Base, RecordUidMixin, UTCDateTime


class UserGrant(Base):
    """The current signed grant of one user (or of the practice's own "system" key)."""

    __tablename__ = "user_grants"

    user_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    can_manage_users: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    # Base64 raw Ed25519 public key; None while the user has not yet logged in since the
    # practice started signing (``proposed_public_key`` then waits for a manager's signature).
    public_key: Mapped[str | None] = mapped_column(String(64))
    proposed_public_key: Mapped[str | None] = mapped_column(String(64))
    # Keys this user signed with before a manager reset their password (space-separated):
    # their old audit events still verify, but these keys never open a log-in.
    retired_public_keys: Mapped[str] = mapped_column(String(2000), default="")
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    signature: Mapped[str] = mapped_column(String(100))


class SlotGrant(Base):
    """One key slot allowed to open the database: its id, owner, kind and key generation."""

    __tablename__ = "slot_grants"

    slot_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    generation: Mapped[int] = mapped_column(default=1)
    signed_by: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(100))


class ContentSignature(RecordUidMixin, Base):
    """A physician's Ed25519 signature over signed clinical content (its SHA-256 hash)."""

    __tablename__ = "content_signatures"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column(index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    signed_by: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    signature: Mapped[str] = mapped_column(String(100))

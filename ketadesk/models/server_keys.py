"""Users' signing keys on a practice server (empty in a practice file, where key slots hold them).

Each user's Ed25519 private key is stored wrapped by a key derived from their password
(argon2id); the database lets each login role read only its own row. Every public key a user
has signed with stays listed, so events signed before a password reset still verify.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ketadesk.models.base import Base, UTCDateTime


class ServerSigningKey(Base):
    """One user's current signing key, wrapped by their password (readable by them only)."""

    __tablename__ = "server_signing_keys"

    user_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64))
    # base64 of the AES-GCM nonce and the sealed 32-byte private key
    wrapped_key: Mapped[str] = mapped_column(String(200))
    kdf_salt: Mapped[str] = mapped_column(String(64))
    # argon2id settings as JSON: time_cost, memory_kib, parallelism
    kdf_params: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ServerPublicKey(Base):
    """A public key a user has signed with on the server (rows are only ever appended)."""

    __tablename__ = "server_public_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_name: Mapped[str] = mapped_column(String(64), index=True)
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())

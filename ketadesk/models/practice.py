"""Practice-wide metadata and clinical configuration stored in the database."""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ketadesk.models.base import Base, TimestampMixin


class PracticeMeta(Base):
    """Identity of this practice database (its id ties key slots and backups to it)."""

    __tablename__ = "practice_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(400))


class PracticeSetting(TimestampMixin, Base):
    """One practice setting, stored as JSON text; defaults live in ketadesk.core.settings."""

    __tablename__ = "practice_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value_json: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(64), default="")

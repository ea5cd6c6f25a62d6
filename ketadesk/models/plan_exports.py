"""Printed treatment plans of signed protocol versions, kept so a reprint can be verified.

A plan's content hash (``ketadesk.reports.plan_document.plan_content_hash``) covers the
letterhead, patient block and review summary as well as the protocol, so one signed protocol
version can be printed with more than one hash over time (for example after the practice moves
or the sitter changes). Each distinct plan that was exported from a signed version is stored
here once, with the document it was rendered from, so ``verify-plan`` can re-render it and
compare the printed pages even after the chart has changed. Drafts are never stored: a draft
preview is not a plan anyone may rely on.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ketadesk.models.base import Base, RecordUidMixin, TimestampMixin


class SignedPlanContent(RecordUidMixin, TimestampMixin, Base):
    """One distinct printed plan of a signed protocol version (by content hash)."""

    __tablename__ = "signed_plan_contents"

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_version_id: Mapped[int] = mapped_column(
        ForeignKey("protocol_versions.id", ondelete="CASCADE"), index=True
    )
    # SHA-256 (hex) of the plan's canonical JSON, as printed in the PDF footer.
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The PlanDocument the PDF was rendered from (ketadesk.storage.plans.plan_export's JSON form).
    document_json: Mapped[str] = mapped_column(Text)
    calendar_weeks_shown: Mapped[int]
    first_exported_by: Mapped[str] = mapped_column(String(64))

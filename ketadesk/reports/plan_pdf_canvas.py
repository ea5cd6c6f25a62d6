"""The plan PDF's canvas: "Page X of Y" footers with plan id and hash, running header, watermark.

The plan id, version and content hash are also written into the PDF's document information
under ``/KetaDeskPlanHash``, ``/KetaDeskPlanId`` and ``/KetaDeskPlanVersion`` so
:mod:`ketadesk.reports.plan_verify` can read them back. No patient data goes into the metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reportlab.lib.units import inch
from reportlab.pdfbase import pdfdoc
from reportlab.pdfgen import canvas as rl_canvas

from ketadesk.reports.plan_pdf_styles import (
    FONT,
    FONT_BOLD,
    MARGIN_X,
    MUTED,
    PAGE_HEIGHT,
    PAGE_WIDTH,
    RULE,
    WATERMARK,
)

#: Custom document-information keys read back by plan_verify. Neither is patient data.
INFO_KEY_HASH = "/KetaDeskPlanHash"
INFO_KEY_PLAN_ID = "/KetaDeskPlanId"
INFO_KEY_VERSION = "/KetaDeskPlanVersion"
DRAFT_WATERMARK = "DRAFT — not for patient use"


# --------------------------------------------------------------------------- canvas


class PlanInfo(pdfdoc.PDFInfo):  # type: ignore[misc]
    """Document information with KetaDesk's custom keys (plan id, version, content hash)."""

    def __init__(self, extra: dict[str, str]) -> None:
        super().__init__()
        self.extra = extra

    def format(self, document: Any) -> bytes:
        entries = {
            "Title": pdfdoc.PDFString(self.title),
            "Author": pdfdoc.PDFString(self.author),
            "Producer": pdfdoc.PDFString(self.producer),
            "Creator": pdfdoc.PDFString(self.creator),
            "Subject": pdfdoc.PDFString(self.subject),
            "Trapped": pdfdoc.PDFName(self.trapped),
        }
        entries["CreationDate"] = entries["ModDate"] = pdfdoc.PDFDate(
            ts=document._timeStamp, dateFormatter=self._dateFormatter
        )
        for key, value in self.extra.items():
            entries[key.lstrip("/")] = pdfdoc.PDFString(value)
        result: bytes = pdfdoc.PDFDictionary(entries).format(document)
        return result


@dataclass(frozen=True)
class PageDecor:
    plan_id: str
    version: int
    content_hash: str
    running_header: str
    is_draft: bool


class NumberedCanvas(rl_canvas.Canvas):  # type: ignore[misc]
    """Holds every page until the end so each footer can say "Page X of Y"."""

    def __init__(self, *args: Any, decor: PageDecor, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._decor = decor
        self._saved_pages: list[dict[str, Any]] = []
        self._doc.info = PlanInfo(
            {
                INFO_KEY_HASH: decor.content_hash,
                INFO_KEY_PLAN_ID: decor.plan_id,
                INFO_KEY_VERSION: str(decor.version),
            }
        )

    def showPage(self) -> None:
        self._saved_pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._saved_pages)
        for number, state in enumerate(self._saved_pages, start=1):
            self.__dict__.update(state)
            self._draw_footer(number, total)
            super().showPage()
        super().save()

    def _draw_footer(self, number: int, total: int) -> None:
        decor = self._decor
        self.saveState()
        self.setStrokeColor(RULE)
        self.setLineWidth(0.6)
        self.line(MARGIN_X, 0.78 * inch, PAGE_WIDTH - MARGIN_X, 0.78 * inch)
        self.setFillColor(MUTED)
        self.setFont(FONT, 8)
        self.drawString(MARGIN_X, 0.6 * inch, f"Plan {decor.plan_id} · version {decor.version}")
        self.drawRightString(PAGE_WIDTH - MARGIN_X, 0.6 * inch, f"Page {number} of {total}")
        self.setFont(FONT, 6.5)
        self.drawString(MARGIN_X, 0.44 * inch, f"Content hash (SHA-256): {decor.content_hash}")
        self.restoreState()


def decorate_page(decor: PageDecor, canv: Any, doc: Any) -> None:
    """Watermark and running header, drawn before the page's content so text sits on top."""
    canv.saveState()
    if decor.is_draft:
        canv.setFillColor(WATERMARK)
        canv.setFillAlpha(0.13)
        canv.setFont(FONT_BOLD, 46)
        canv.translate(PAGE_WIDTH / 2, PAGE_HEIGHT / 2)
        canv.rotate(52)
        canv.drawCentredString(0, -16, DRAFT_WATERMARK)
        canv.setFillAlpha(1)
        canv.rotate(-52)
        canv.translate(-PAGE_WIDTH / 2, -PAGE_HEIGHT / 2)
    if doc.page > 1:
        canv.setFillColor(MUTED)
        canv.setFont(FONT, 8)
        canv.drawString(MARGIN_X, PAGE_HEIGHT - 0.5 * inch, decor.running_header)
        canv.setStrokeColor(RULE)
        canv.setLineWidth(0.6)
        top_rule = PAGE_HEIGHT - 0.58 * inch
        canv.line(MARGIN_X, top_rule, PAGE_WIDTH - MARGIN_X, top_rule)
    canv.restoreState()



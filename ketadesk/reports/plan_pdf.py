"""Render a :class:`~ketadesk.reports.plan_document.PlanDocument` as a portrait US Letter PDF.

The layout is a calm clinical letter: letterhead, patient and prescriber, the prescription,
a dosing calendar with tick boxes, monitoring and hold parameters, safety instructions, the
interaction review (including entries "not checked"), the disclaimer and the signature. Every
page carries "Page X of Y", the plan id and the plan's content hash; the hash and plan id are also
stored in the PDF's document information under ``/KetaDeskPlanHash`` and ``/KetaDeskPlanId`` so
:mod:`ketadesk.reports.plan_verify` can read them back. No patient data goes into the metadata.

The sections are built in :mod:`ketadesk.reports.plan_pdf_sections`, the footer, header and
watermark in :mod:`ketadesk.reports.plan_pdf_canvas`, the look in
:mod:`ketadesk.reports.plan_pdf_styles`.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from typing import Any

from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import LETTER
from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate

from ketadesk.core.errors import UserFacingError
from ketadesk.reports.plan_document import PlanDocument, plan_content_hash
from ketadesk.reports.plan_pdf_canvas import NumberedCanvas, PageDecor, decorate_page
from ketadesk.reports.plan_pdf_sections import plan_story
from ketadesk.reports.plan_pdf_styles import (
    CONTENT_WIDTH,
    FONT,
    FRAME_HEIGHT,
    MARGIN_BOTTOM,
    MARGIN_TOP,
    MARGIN_X,
    fmt_date,
    register_fonts,
)

#: Generic document title; never the patient's name (metadata leaves the practice by email).
PDF_TITLE = "KetaDesk treatment plan"
PDF_CREATOR = "KetaDesk"


def render_plan_pdf(doc: PlanDocument, *, password: str | None = None) -> bytes:
    """Render ``doc`` as PDF bytes (portrait US Letter, DejaVu Sans embedded).

    A plan that is not a draft must be signed. With ``password`` the PDF is encrypted with
    AES-256 and needs that password to open; the password is used once and never stored.
    """
    if not doc.is_draft and not doc.is_signed:
        raise UserFacingError(
            "Only signed protocol versions can be exported as a plan; sign the protocol first "
            "or export a watermarked draft preview."
        )
    if password is not None and not password:
        raise UserFacingError("The PDF password cannot be empty.")
    register_fonts()
    content_hash = plan_content_hash(doc)
    patient = doc.patient
    decor = PageDecor(
        plan_id=doc.plan_id,
        version=doc.version,
        content_hash=content_hash,
        running_header=(
            f"{patient.full_name} · DOB {fmt_date(patient.date_of_birth, doc.date_style)}"
            f" · MRN {patient.mrn}"
            f"  —  {doc.title} (continued)"
        ),
        is_draft=doc.is_draft,
    )
    buffer = io.BytesIO()
    template = BaseDocTemplate(
        buffer,
        pagesize=LETTER,
        leftMargin=MARGIN_X,
        rightMargin=MARGIN_X,
        topMargin=MARGIN_TOP,
        bottomMargin=MARGIN_BOTTOM,
        title=PDF_TITLE,
        author=doc.practice.name,
        subject="Treatment plan",
        creator=PDF_CREATOR,
        keywords="",
        initialFontName=FONT,  # otherwise an unused, unembedded Helvetica is referenced
    )
    # Zero frame padding so tables, headings, header and footer share one left edge.
    frame = Frame(
        MARGIN_X,
        MARGIN_BOTTOM,
        CONTENT_WIDTH,
        FRAME_HEIGHT,
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
        id="body",
    )
    on_page: Callable[[Any, Any], None] = functools.partial(decorate_page, decor)
    template.addPageTemplates([PageTemplate(id="plan", frames=[frame], onPage=on_page)])
    canvasmaker = functools.partial(NumberedCanvas, decor=decor)
    template.build(plan_story(doc), canvasmaker=canvasmaker)
    pdf = buffer.getvalue()
    if password is not None:
        pdf = encrypt_pdf(pdf, password)
    return pdf


def encrypt_pdf(pdf: bytes, password: str) -> bytes:
    """Return ``pdf`` encrypted with AES-256 under ``password`` (metadata kept, also encrypted)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=password, owner_password=None, algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()

"""Two printouts of the compliance feature, portrait US Letter with DejaVu Sans embedded:

* the informed-consent form: the practice, the patient's details, the consent text of one
  template version (an example template is marked as such on every page) and signature lines;
* the prescription: patient, drug, strength, quantity in figures and words, directions,
  refills, pharmacy, prescriber with licence and DEA numbers, the date written out, and a
  signature line; a voided prescription is printed with VOID across it.

No patient data goes into the PDF metadata (generic titles only).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import LETTER
from reportlab.platypus import (
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from ketadesk.reports.plan_pdf_styles import (
    AMBER_FILL,
    AMBER_RULE,
    CONTENT_WIDTH,
    FONT,
    MARGIN_BOTTOM,
    MARGIN_TOP,
    MARGIN_X,
    MUTED,
    RULE,
    WATERMARK,
    markup,
    plan_styles,
    register_fonts,
)

CONSENT_TITLE = "KetaDesk consent form"
PRESCRIPTION_TITLE = "KetaDesk prescription"


@dataclass(frozen=True)
class PracticeHeading:
    name: str
    address: str = ""
    phone: str = ""


@dataclass(frozen=True)
class PatientLines:
    name: str
    dob: date
    mrn: str
    address: str = ""
    phone: str = ""


@dataclass(frozen=True)
class ConsentForm:
    practice: PracticeHeading
    patient: PatientLines
    title: str
    version: int
    paragraphs: Sequence[str]
    is_example: bool
    example_notice: str
    printed_on: date


@dataclass(frozen=True)
class PrescriptionPrint:
    practice: PracticeHeading
    patient: PatientLines
    prescription_id: int
    product: str
    strength: str
    quantity: float
    unit_name: str
    directions: str
    refills: int
    pharmacy: str
    issued_on: date
    prescriber_full_name: str
    prescriber_licence_number: str
    prescriber_dea_number: str
    remote: bool
    content_hash: str
    is_void: bool = False
    void_reason: str = ""


def long_date(day: date) -> str:
    """The date written out, e.g. "June 15, 2026" (Florida asks for the date in words)."""
    return f"{day:%B} {day.day}, {day.year}"


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_in_words(value: float) -> str:
    """A quantity in words ("thirty", "one hundred twenty", "twelve and a half")."""
    whole = int(value)
    rest = round(value - whole, 3)
    if whole >= 10_000 or rest not in (0.0, 0.5):
        return ""
    words = _whole_words(whole)
    return words + (" and a half" if rest == 0.5 else "")


def _whole_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    if n < 1000:
        head = f"{_ONES[n // 100]} hundred"
        return head if n % 100 == 0 else f"{head} {_whole_words(n % 100)}"
    head = f"{_whole_words(n // 1000)} thousand"
    return head if n % 1000 == 0 else f"{head} {_whole_words(n % 1000)}"


def _number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _document(buffer: io.BytesIO, title: str) -> SimpleDocTemplate:
    return SimpleDocTemplate(
        buffer, pagesize=LETTER, leftMargin=MARGIN_X, rightMargin=MARGIN_X,
        topMargin=MARGIN_TOP, bottomMargin=MARGIN_BOTTOM, title=title, author="KetaDesk",
        creator="KetaDesk", subject="",
    )


def _heading(practice: PracticeHeading, title: str) -> list[Any]:
    styles = plan_styles()
    contact = " · ".join(p for p in (practice.address, practice.phone) if p)
    left = [Paragraph(markup(practice.name), styles.practice)]
    if contact:
        left.append(Paragraph(markup(contact), styles.small))
    table = Table([[left, Paragraph(markup(title), styles.title)]],
                  colWidths=[CONTENT_WIDTH * 0.6, CONTENT_WIDTH * 0.4])
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, RULE),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 8),
    ]))
    return [table, Spacer(1, 10)]


def _fields(rows: Sequence[tuple[str, str]]) -> Table:
    styles = plan_styles()
    table = Table(
        [[Paragraph(markup(k), styles.label), Paragraph(markup(v), styles.cell)] for k, v in rows],
        colWidths=[CONTENT_WIDTH * 0.24, CONTENT_WIDTH * 0.76],
    )
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]))
    return table


def _callout(text: str) -> Table:
    styles = plan_styles()
    table = Table([[Paragraph(markup(text), styles.callout)]], colWidths=[CONTENT_WIDTH])
    table.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, -1), AMBER_FILL),
        ("BOX", (0, 0), (-1, -1), 0.8, AMBER_RULE),
        ("LEFTPADDING", (0, 0), (-1, -1), 8),
        ("TOPPADDING", (0, 0), (-1, -1), 6),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
    ]))
    return table


def _signature_lines(labels: Sequence[tuple[str, str]]) -> Table:
    styles = plan_styles()
    rows = []
    for left, right in labels:
        rows.append(["", "", ""])
        rows.append([Paragraph(markup(left), styles.small), "",
                     Paragraph(markup(right), styles.small)])
    table = Table(rows, colWidths=[CONTENT_WIDTH * 0.62, CONTENT_WIDTH * 0.06,
                                   CONTENT_WIDTH * 0.32],
                  rowHeights=[28, 14] * len(labels))
    style: list[tuple[Any, ...]] = [("VALIGN", (0, 0), (-1, -1), "BOTTOM")]
    for index in range(len(labels)):
        style.append(("LINEBELOW", (0, 2 * index), (0, 2 * index), 0.8, colors.black))
        style.append(("LINEBELOW", (2, 2 * index), (2, 2 * index), 0.8, colors.black))
    table.setStyle(TableStyle(style))
    return table


def _patient_rows(patient: PatientLines) -> list[tuple[str, str]]:
    rows = [("Patient", patient.name), ("Date of birth", long_date(patient.dob)),
            ("MRN", patient.mrn)]
    if patient.address:
        rows.append(("Address", patient.address))
    if patient.phone:
        rows.append(("Phone", patient.phone))
    return rows


def _footer_maker(text: str, *, example: str = "", void: bool = False) -> Any:
    def draw(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7.5)
        canvas.setFillColor(MUTED)
        canvas.drawString(MARGIN_X, MARGIN_BOTTOM / 2, text)
        canvas.drawRightString(LETTER[0] - MARGIN_X, MARGIN_BOTTOM / 2, f"Page {doc.page}")
        if example:
            canvas.setFillColor(WATERMARK)
            canvas.drawString(MARGIN_X, LETTER[1] - MARGIN_TOP / 2, example)
        if void:
            canvas.setFillColor(WATERMARK)
            canvas.setFont(FONT, 96)
            canvas.translate(LETTER[0] / 2, LETTER[1] / 2)
            canvas.rotate(35)
            canvas.drawCentredString(0, 0, "VOID")
        canvas.restoreState()

    return draw


def render_consent_form_pdf(form: ConsentForm) -> bytes:
    """The consent form for one patient and one template version, with signature lines."""
    register_fonts()
    styles = plan_styles()
    story: list[Any] = _heading(form.practice, "Informed consent")
    if form.is_example:
        story += [_callout(form.example_notice), Spacer(1, 8)]
    story += [_fields(_patient_rows(form.patient)), Spacer(1, 6)]
    story.append(Paragraph(markup(form.title), styles.heading))
    for paragraph in form.paragraphs:
        story.append(Paragraph(markup(paragraph), styles.body))
        story.append(Spacer(1, 3))
    story.append(KeepTogether([Spacer(1, 14), _signature_lines([
        ("Patient's signature", "Date"),
        ("Physician's signature", "Date"),
        ("Witness (name and signature)", "Date"),
    ])]))
    buffer = io.BytesIO()
    footer = _footer_maker(
        f"Consent version {form.version} · printed {long_date(form.printed_on)} · MRN "
        f"{form.patient.mrn}",
        example="EXAMPLE CONSENT — to be confirmed by the practice's counsel"
        if form.is_example else "",
    )
    _document(buffer, CONSENT_TITLE).build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def render_prescription_pdf(rx: PrescriptionPrint) -> bytes:
    """The printed prescription (a record copy; the pharmacy's copy follows state rules)."""
    register_fonts()
    styles = plan_styles()
    story: list[Any] = _heading(rx.practice, "Prescription (C-III)")
    if rx.is_void:
        story += [_callout(f"VOID — this prescription was voided: {rx.void_reason}"),
                  Spacer(1, 8)]
    story += [_fields(_patient_rows(rx.patient)), Spacer(1, 10)]
    words = number_in_words(rx.quantity)
    quantity = f"{_number(rx.quantity)} ({words}) {rx.unit_name}s" if words else (
        f"{_number(rx.quantity)} {rx.unit_name}s")
    refills = number_in_words(rx.refills)
    story.append(_fields([
        ("Drug", rx.product),
        ("Strength", rx.strength),
        ("Quantity", quantity),
        ("Directions", rx.directions),
        ("Refills", f"{rx.refills} ({refills})"),
        ("Pharmacy", rx.pharmacy or "—"),
        ("Date issued", long_date(rx.issued_on)),
        ("Visit", "telemedicine (remote)" if rx.remote else "in person"),
    ]))
    story += [Spacer(1, 12), _fields([
        ("Prescriber", rx.prescriber_full_name),
        ("State licence", rx.prescriber_licence_number or "—"),
        ("DEA registration", rx.prescriber_dea_number or "—"),
    ])]
    story += [Spacer(1, 16), _signature_lines([("Prescriber's signature", "Date")])]
    story += [Spacer(1, 10), Paragraph(
        "Refills of a Schedule III prescription: at most five, within six months of the date "
        "issued (21 CFR 1306.22).", styles.small)]
    buffer = io.BytesIO()
    footer = _footer_maker(
        f"Prescription {rx.prescription_id} · content {rx.content_hash[:16]}", void=rx.is_void
    )
    _document(buffer, PRESCRIPTION_TITLE).build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


WORKLIST_TITLE = "KetaDesk compliance worklist"


@dataclass(frozen=True)
class WorklistLine:
    """One line of the printed worklist: what (a short label), for whom, by when, and why."""

    what: str
    who: str
    due: str
    detail: str


def render_worklist_pdf(
    practice: PracticeHeading, lines: Sequence[WorklistLine], printed_on: date
) -> bytes:
    """The compliance worklist as a table, one line per item (patients by MRN)."""
    register_fonts()
    styles = plan_styles()
    story: list[Any] = _heading(practice, "Compliance worklist")
    story.append(Paragraph(
        markup(f"Printed {long_date(printed_on)} · {len(lines)} item"
               f"{'s' if len(lines) != 1 else ''}. The rules behind each line must be confirmed "
               "with the practice's counsel."), styles.small))
    story.append(Spacer(1, 8))
    if not lines:
        story.append(Paragraph("Nothing is due.", styles.body))
    else:
        header = [Paragraph(markup(t), styles.header_cell)
                  for t in ("What", "Patient / physician", "By", "Detail")]
        rows = [header] + [
            [Paragraph(markup(line.what), styles.cell_bold),
             Paragraph(markup(line.who), styles.cell),
             Paragraph(markup(line.due), styles.cell),
             Paragraph(markup(line.detail), styles.cell)]
            for line in lines
        ]
        table = Table(rows, repeatRows=1, colWidths=[
            CONTENT_WIDTH * 0.18, CONTENT_WIDTH * 0.24, CONTENT_WIDTH * 0.13,
            CONTENT_WIDTH * 0.45,
        ])
        table.setStyle(TableStyle([
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
            ("TOPPADDING", (0, 0), (-1, -1), 3),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ]))
        story.append(table)
    buffer = io.BytesIO()
    footer = _footer_maker(f"Compliance worklist · printed {long_date(printed_on)}")
    _document(buffer, WORKLIST_TITLE).build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()

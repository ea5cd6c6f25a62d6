"""Render a :class:`~ketadesk.reports.plan_document.PlanDocument` as a portrait US Letter PDF.

The layout is a calm clinical letter: letterhead, patient and prescriber, the prescription,
a dosing calendar with tick boxes, monitoring and hold parameters, safety instructions, the
interaction review (including entries "not checked"), the disclaimer and the signature. Every
page carries "Page X of Y", the plan id and the plan's content hash; the hash and plan id are also
stored in the PDF's document information under ``/KetaDeskPlanHash`` and ``/KetaDeskPlanId`` so
:mod:`ketadesk.reports.plan_verify` can read them back. No patient data goes into the metadata.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from pypdf import PdfReader, PdfWriter
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Frame,
    Image,
    KeepTogether,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.reports.plan_document import (
    CalendarRow,
    PlanDocument,
    plan_content_hash,
    shown_calendar_rows,
)
from ketadesk.resources import load_validated_json, resource_path

#: Generic document title; never the patient's name (metadata leaves the practice by email).
PDF_TITLE = "KetaDesk treatment plan"
PDF_CREATOR = "KetaDesk"
#: Custom document-information keys read back by plan_verify. Neither is patient data.
INFO_KEY_HASH = "/KetaDeskPlanHash"
INFO_KEY_PLAN_ID = "/KetaDeskPlanId"
INFO_KEY_VERSION = "/KetaDeskPlanVersion"
DRAFT_WATERMARK = "DRAFT — not for patient use"
TICK_BOX = "☐"

FONT = "KetaDeskSans"
FONT_BOLD = "KetaDeskSans-Bold"

PAGE_WIDTH, PAGE_HEIGHT = LETTER
MARGIN_X = 0.75 * inch
MARGIN_TOP = 0.85 * inch
MARGIN_BOTTOM = 0.9 * inch
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN_X
FRAME_HEIGHT = PAGE_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

INK = colors.HexColor("#1d2a33")
MUTED = colors.HexColor("#5b6b75")
ACCENT = colors.HexColor("#1f5a6e")
RULE = colors.HexColor("#c9d5db")
SHADE = colors.HexColor("#f1f5f7")
HEADER_FILL = colors.HexColor("#e2ecf0")
AMBER_FILL = colors.HexColor("#fdf6e3")
AMBER_RULE = colors.HexColor("#d9a441")
WATERMARK = colors.HexColor("#b23b3b")


# --------------------------------------------------------------------------- resources


@dataclass(frozen=True)
class _Instruction:
    heading: str
    text: str


@dataclass(frozen=True)
class _PatientText:
    disclaimer: tuple[str, ...]
    instructions: tuple[_Instruction, ...]
    sources: tuple[str, ...]


@functools.cache
def _patient_text() -> _PatientText:
    """Load and validate the disclaimer and safety instructions (clinical text lives in data)."""
    data = load_validated_json(
        "plan", "patient_instructions.json", schema="patient_instructions.schema.json"
    )
    sources: dict[str, None] = {}
    for entry in [data["disclaimer"], *data["safety_instructions"]]:
        for source in entry["sources"]:
            sources[f"{source['title']}. {source['url']}"] = None
    return _PatientText(
        disclaimer=tuple(data["disclaimer"]["paragraphs"]),
        instructions=tuple(
            _Instruction(item["heading"], item["text"]) for item in data["safety_instructions"]
        ),
        sources=tuple(sources),
    )


@functools.cache
def _register_fonts() -> None:
    """Register DejaVu Sans once per process; it is embedded (subset) in every plan.

    Also switches off reportlab's ASCII85 wrapping of compressed streams: binary streams are
    about 20% smaller and skip a pure-Python encoding pass. Every PDF reader accepts them.
    """
    rl_config.useA85 = 0
    pdfmetrics.registerFont(TTFont(FONT, str(resource_path("fonts", "DejaVuSans.ttf"))))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(resource_path("fonts", "DejaVuSans-Bold.ttf"))))
    pdfmetrics.registerFontFamily(
        FONT, normal=FONT, bold=FONT_BOLD, italic=FONT, boldItalic=FONT_BOLD
    )


# --------------------------------------------------------------------------- styles


@dataclass(frozen=True)
class _Styles:
    body: ParagraphStyle
    small: ParagraphStyle
    tiny: ParagraphStyle
    label: ParagraphStyle
    cell: ParagraphStyle
    cell_bold: ParagraphStyle
    header_cell: ParagraphStyle
    heading: ParagraphStyle
    practice: ParagraphStyle
    title: ParagraphStyle
    title_meta: ParagraphStyle
    callout: ParagraphStyle


@functools.cache
def _styles() -> _Styles:
    body = ParagraphStyle(
        "body",
        fontName=FONT,
        bulletFontName=FONT,
        fontSize=9.5,
        leading=13.2,
        textColor=INK,
        spaceAfter=3,
    )
    cell = ParagraphStyle("cell", parent=body, fontSize=9, leading=12, spaceAfter=0)
    return _Styles(
        body=body,
        small=ParagraphStyle("small", parent=body, fontSize=8.5, leading=11.5, textColor=MUTED),
        tiny=ParagraphStyle("tiny", parent=body, fontSize=7, leading=9, textColor=MUTED),
        label=ParagraphStyle(
            "label", parent=cell, fontName=FONT_BOLD, fontSize=8.3, textColor=MUTED
        ),
        cell=cell,
        cell_bold=ParagraphStyle("cell_bold", parent=cell, fontName=FONT_BOLD),
        header_cell=ParagraphStyle(
            "header_cell", parent=cell, fontName=FONT_BOLD, fontSize=8.5, textColor=ACCENT
        ),
        heading=ParagraphStyle(
            "heading",
            parent=body,
            fontName=FONT_BOLD,
            fontSize=12.5,
            leading=16,
            textColor=ACCENT,
            spaceBefore=14,
            spaceAfter=6,
        ),
        practice=ParagraphStyle(
            "practice", parent=body, fontName=FONT_BOLD, fontSize=14, leading=18, spaceAfter=1
        ),
        title=ParagraphStyle(
            "title",
            parent=body,
            fontName=FONT_BOLD,
            fontSize=14,
            leading=18,
            textColor=ACCENT,
            alignment=TA_RIGHT,
        ),
        title_meta=ParagraphStyle("title_meta", parent=body, alignment=TA_RIGHT, textColor=MUTED),
        callout=ParagraphStyle("callout", parent=body, spaceAfter=2),
    )


# --------------------------------------------------------------------------- formatting


def _esc(text: str) -> str:
    return escape(text).replace("\n", "<br/>")


def _fmt_date(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def _fmt_day(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b %Y}"


def _fmt_datetime(moment: datetime) -> str:
    zone = moment.tzname() or "UTC"
    return f"{moment.day} {moment:%b %Y, %H:%M} {zone}"


def _fmt_number(value: float) -> str:
    """Short decimal text: 100 -> "100", 1.25 -> "1.25", 0.3333 -> "0.33"."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def _or_not_recorded(value: str | None) -> str:
    return value if value else "Not recorded"


# --------------------------------------------------------------------------- canvas


class _PlanInfo(pdfdoc.PDFInfo):  # type: ignore[misc]
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
class _PageDecor:
    plan_id: str
    version: int
    content_hash: str
    running_header: str
    is_draft: bool


class _NumberedCanvas(rl_canvas.Canvas):  # type: ignore[misc]
    """Holds every page until the end so each footer can say "Page X of Y"."""

    def __init__(self, *args: Any, decor: _PageDecor, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._decor = decor
        self._saved_pages: list[dict[str, Any]] = []
        self._doc.info = _PlanInfo(
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


def _decorate_page(decor: _PageDecor, canv: Any, doc: Any) -> None:
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


# --------------------------------------------------------------------------- building blocks


def _table_style(commands: Sequence[tuple[Any, ...]]) -> TableStyle:
    """Table style whose cells default to DejaVu (reportlab would otherwise set Helvetica)."""
    return TableStyle([("FONTNAME", (0, 0), (-1, -1), FONT), *commands])


def _heading(text: str, *, room: float = 1.6 * inch) -> list[Any]:
    """A section heading that starts a new page rather than sit alone at the bottom of one."""
    return [CondPageBreak(room), Paragraph(_esc(text), _styles().heading)]


def _fit(text: str, style: ParagraphStyle, width: float) -> str | Paragraph:
    """Plain text when it fits on one line of ``width`` points, else a wrapping Paragraph.

    Plain table cells are drawn directly, without paragraph layout; plans have hundreds of
    short cells and this keeps rendering close to the raw reportlab floor. The table's style
    must give plain cells the same font, size and colour as ``style``.
    """
    if "\n" not in text and stringWidth(text, style.fontName, style.fontSize) <= width:
        return text
    return Paragraph(_esc(text), style)


def _key_value_table(
    rows: Sequence[tuple[str, str | Paragraph]], width: float, label_width: float
) -> Table:
    """Label / value pairs; a plain-text value is wrapped only when it is too long for one line."""
    st = _styles()
    value_width = width - label_width - 6
    data = [
        [
            _fit(label, st.label, label_width - 6),
            _fit(value, st.cell, value_width) if isinstance(value, str) else value,
        ]
        for label, value in rows
    ]
    table = Table(data, colWidths=[label_width, width - label_width], splitInRow=1)
    table.setStyle(
        _table_style(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("FONTNAME", (0, 0), (0, -1), FONT_BOLD),
                ("FONTSIZE", (0, 0), (0, -1), st.label.fontSize),
                ("TEXTCOLOR", (0, 0), (0, -1), MUTED),
                ("FONTSIZE", (1, 0), (1, -1), st.cell.fontSize),
                ("TEXTCOLOR", (1, 0), (1, -1), INK),
                ("LEADING", (0, 0), (-1, -1), st.cell.leading),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 6),
                ("TOPPADDING", (0, 0), (-1, -1), 2.2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2.2),
            ]
        )
    )
    return table


def _boxed(flowables: list[Any], *, fill: Any, rule: Any, width: float = CONTENT_WIDTH) -> Table:
    box = Table([[flowables]], colWidths=[width])
    box.setStyle(
        _table_style(
            [
                ("BACKGROUND", (0, 0), (-1, -1), fill),
                ("LINEBEFORE", (0, 0), (0, -1), 2.5, rule),
                ("LEFTPADDING", (0, 0), (-1, -1), 10),
                ("RIGHTPADDING", (0, 0), (-1, -1), 10),
                ("TOPPADDING", (0, 0), (-1, -1), 7),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 7),
            ]
        )
    )
    # Only a box taller than a page may split inside itself: splitting a short box at the foot of
    # a page leaves an empty coloured sliver there.
    _, height = box.wrap(width, PAGE_HEIGHT)
    if height > 0.8 * FRAME_HEIGHT:
        box.splitInRow = 1
    return box


def _bullets(lines: Sequence[str], style: ParagraphStyle) -> list[Paragraph]:
    return [Paragraph(_esc(line), style, bulletText="•") for line in lines]


def _grid_style(header_rows: int = 1) -> list[tuple[Any, ...]]:
    return [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, header_rows - 1), HEADER_FILL),
        ("LINEBELOW", (0, 0), (-1, header_rows - 1), 0.8, ACCENT),
        ("LINEBELOW", (0, header_rows), (-1, -1), 0.4, RULE),
        ("LEFTPADDING", (0, 0), (-1, -1), 5),
        ("RIGHTPADDING", (0, 0), (-1, -1), 5),
        ("TOPPADDING", (0, 0), (-1, -1), 3.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3.5),
    ]


# --------------------------------------------------------------------------- sections


def _letterhead(doc: PlanDocument) -> list[Any]:
    st = _styles()
    practice = doc.practice
    left: list[Any] = []
    if practice.logo_path and Path(practice.logo_path).is_file():
        try:
            logo = Image(practice.logo_path)
            scale = min(0.75 * inch / logo.imageHeight, 1.8 * inch / logo.imageWidth)
            logo.drawHeight = logo.imageHeight * scale
            logo.drawWidth = logo.imageWidth * scale
            logo.hAlign = "LEFT"
            left.extend([logo, Spacer(1, 4)])
        except OSError:  # an unreadable logo only costs the letterhead its picture
            left = []
    left.append(Paragraph(_esc(practice.name), st.practice))
    left.append(Paragraph(_esc(practice.address), st.small))
    left.append(Paragraph(f"Phone {_esc(practice.phone)}", st.small))

    if doc.is_signed and doc.signed_at is not None:
        status = f"Signed {_esc(_fmt_date(doc.signed_at.date()))}"
    else:
        status = "Draft — not signed"
    right = [
        Paragraph(_esc(doc.title), st.title),
        Paragraph(f"Version {doc.version} · {status}", st.title_meta),
        Paragraph(f"Plan {_esc(doc.plan_id)}", st.title_meta),
    ]
    head = Table([[left, right]], colWidths=[CONTENT_WIDTH * 0.46, CONTENT_WIDTH * 0.54])
    head.setStyle(
        _table_style(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 8),
                ("LINEBELOW", (0, 0), (-1, -1), 1.2, ACCENT),
            ]
        )
    )
    flow: list[Any] = [head, Spacer(1, 4)]
    if doc.is_draft:
        flow += [
            Spacer(1, 8),
            _boxed(
                [
                    Paragraph(
                        f"<b>{_esc(DRAFT_WATERMARK)}.</b> This preview has not been signed by "
                        "the prescribing physician and must not be given to the patient.",
                        st.callout,
                    )
                ],
                fill=AMBER_FILL,
                rule=WATERMARK,
            ),
        ]
    return flow


def _people(doc: PlanDocument) -> list[Any]:
    patient, prescriber = doc.patient, doc.prescriber
    half = (CONTENT_WIDTH - 18) / 2
    st = _styles()
    patient_rows: list[tuple[str, str | Paragraph]] = [
        ("Name", Paragraph(f"<b>{_esc(patient.full_name)}</b>", st.cell)),
        ("Date of birth", _fmt_date(patient.date_of_birth)),
        ("MRN", patient.mrn),
        ("State", patient.state),
    ]
    prescriber_rows: list[tuple[str, str | Paragraph]] = [
        ("Name", Paragraph(f"<b>{_esc(prescriber.full_name)}</b>", st.cell)),
        ("NPI", prescriber.npi),
        ("Licensed in", ", ".join(prescriber.licence_states) or "Not recorded"),
        ("Phone", doc.practice.phone),
    ]
    support_rows: list[tuple[str, str | Paragraph]] = [
        (
            "Sitter",
            _or_not_recorded(patient.sitter_name)
            + (f" · {patient.sitter_phone}" if patient.sitter_phone else ""),
        ),
        (
            "Emergency contact",
            _or_not_recorded(patient.emergency_contact_name)
            + (f" · {patient.emergency_contact_phone}" if patient.emergency_contact_phone else ""),
        ),
    ]
    left = [
        Paragraph("Patient", st.heading),
        _key_value_table(patient_rows, half, 1.05 * inch),
    ]
    right = [
        Paragraph("Prescribing physician", st.heading),
        _key_value_table(prescriber_rows, half, 1.05 * inch),
    ]
    pair = Table([[left, right]], colWidths=[half + 18, half])
    pair.setStyle(
        _table_style(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    return [
        pair,
        *_heading("Support on dosing days"),
        _key_value_table(support_rows, CONTENT_WIDTH, 1.4 * inch),
    ]


def _protocol(doc: PlanDocument) -> list[Any]:
    p = doc.protocol
    st = _styles()
    dose = (
        f"<b>{_fmt_number(p.dose_mg)} mg</b> per dose "
        f"({_fmt_number(p.mg_per_kg)} mg/kg at {_fmt_number(p.weight_kg)} kg, "
        f"weighed {_esc(_fmt_date(p.weight_date))})"
    )
    titration = (
        "<br/>".join(f"{i}. {_esc(step)}" for i, step in enumerate(p.titration_steps, 1))
        or "No titration: the dose stays the same."
    )
    rows: list[tuple[str, str | Paragraph]] = [
        ("Treating", p.indication),
        ("Treatment type", p.kind),
        ("Medicine", f"Ketamine, {p.formulation}, {p.strength}"),
        ("Route", p.route),
        ("Dose", Paragraph(dose, st.cell)),
        ("How often", p.frequency),
        ("Titration", Paragraph(titration, st.cell)),
        ("Maximum dose", f"{_fmt_number(p.max_dose_mg)} mg per dose — never take more"),
        ("Duration", p.duration),
        ("Supply", f"{p.supply_per_30_days} per 30 days · refills: {p.refills}"),
    ]
    sig = _boxed(
        [
            Paragraph("<b>Directions (sig)</b>", st.label),
            Paragraph(_esc(p.sig), st.body),
        ],
        fill=SHADE,
        rule=ACCENT,
    )
    return [
        *_heading("Your prescription", room=3.5 * inch),
        _key_value_table(rows, CONTENT_WIDTH, 1.4 * inch),
        Spacer(1, 6),
        sig,
    ]


def _calendar(doc: PlanDocument) -> list[Any]:
    st = _styles()
    rows = shown_calendar_rows(doc)
    flow: list[Any] = _heading("Dosing calendar", room=2.4 * inch)
    if not rows:
        flow.append(Paragraph("No dosing days are scheduled in this plan.", st.body))
        return flow
    first = rows[0].day
    total_weeks = (doc.calendar[-1].day - first).days // 7 + 1
    shown_weeks = min(doc.calendar_weeks_shown, total_weeks)
    if shown_weeks < total_weeks:
        scope = (
            f"Weeks 1–{shown_weeks} of {total_weeks}. Your care team will give you the "
            "calendar for the weeks after that."
        )
    else:
        scope = f"All {total_weeks} week{'s' if total_weeks != 1 else ''} of the plan."
    flow.append(
        Paragraph(
            f"{scope} Tick the box once you have taken the dose or done the check. "
            "Take only the dose printed for that day.",
            st.small,
        )
    )
    flow.append(Spacer(1, 4))
    header = [
        Paragraph("Done", st.header_cell),
        Paragraph("Date", st.header_cell),
        Paragraph("Week", st.header_cell),
        Paragraph("Dose", st.header_cell),
        Paragraph("mg/kg", st.header_cell),
        Paragraph("Checks and notes", st.header_cell),
    ]
    data: list[list[Any]] = [header]
    style = _grid_style()
    # Short cells are plain strings (drawn directly, no paragraph layout): a 12-week calendar
    # has a few hundred cells and this keeps one plan close to the raw reportlab floor.
    style += [
        ("FONTSIZE", (1, 1), (-1, -1), 9),
        ("LEADING", (1, 1), (-1, -1), 12),
        ("TEXTCOLOR", (1, 1), (-1, -1), INK),
        ("FONTNAME", (3, 1), (3, -1), FONT_BOLD),
        ("FONTSIZE", (0, 1), (0, -1), 14),
        ("LEADING", (0, 1), (0, -1), 12),
        ("TEXTCOLOR", (0, 1), (0, -1), MUTED),
        ("ALIGN", (0, 0), (0, -1), "CENTER"),
    ]
    previous_week = None
    for index, row in enumerate(rows, start=1):
        week = (row.day - first).days // 7 + 1
        data.append(_calendar_cells(row, week))
        if row.dose_mg is None:
            style += [
                ("FONTNAME", (3, index), (3, index), FONT),
                ("TEXTCOLOR", (3, index), (4, index), MUTED),
            ]
        if previous_week is not None and week != previous_week:
            style.append(("LINEABOVE", (0, index), (-1, index), 0.9, ACCENT))
        if week % 2 == 0:
            style.append(("BACKGROUND", (0, index), (-1, index), SHADE))
        previous_week = week
    widths = [0.5, 1.3, 0.55, 0.85, 0.65]
    col_widths = [w * inch for w in widths]
    col_widths.append(CONTENT_WIDTH - sum(col_widths))
    table = Table(data, colWidths=col_widths, repeatRows=1, splitInRow=1)
    table.setStyle(_table_style(style))
    flow.append(table)
    return flow


def _calendar_cells(row: CalendarRow, week: int) -> list[Any]:
    if row.dose_mg is None:
        dose, per_kg = "No dose", "—"
    else:
        dose = f"{_fmt_number(row.dose_mg)} mg"
        per_kg = _fmt_number(row.mg_per_kg) if row.mg_per_kg is not None else "—"
    notes: Any = ""
    if row.events:
        notes = Paragraph("<br/>".join(_esc(event) for event in row.events), _styles().cell)
    return [TICK_BOX, _fmt_day(row.day), str(week), dose, per_kg, notes]


def _monitoring(doc: PlanDocument) -> list[Any]:
    st = _styles()
    m = doc.monitoring
    flow: list[Any] = _heading("Monitoring plan", room=2.2 * inch)
    flow += _bullets(m.lines, st.body) or [Paragraph("No monitoring lines recorded.", st.body)]
    holds = _bullets(m.hold_parameters, st.callout) or [
        Paragraph("No hold parameters recorded — ask your physician before dosing.", st.callout)
    ]
    flow += [
        Spacer(1, 6),
        _boxed(
            [
                Paragraph(
                    "<b>Hold parameters — do not take the dose, and call the practice, if:</b>",
                    st.callout,
                ),
                *holds,
            ],
            fill=AMBER_FILL,
            rule=AMBER_RULE,
        ),
    ]
    return flow


def _safety(doc: PlanDocument) -> list[Any]:
    st = _styles()
    text = _patient_text()
    data = []
    for item in text.instructions:
        data.append(
            [
                Paragraph(f"<b>{_esc(item.heading)}</b>", st.cell),
                Paragraph(_esc(item.text), st.cell),
            ]
        )
    patient = doc.patient
    contacts = (
        f"Practice: <b>{_esc(doc.practice.phone)}</b> · "
        f"Sitter: {_esc(_or_not_recorded(patient.sitter_name))}"
        + (f", {_esc(patient.sitter_phone)}" if patient.sitter_phone else "")
        + " · Emergencies: <b>911</b> · Mental-health crisis: call or text <b>988</b>"
    )
    data.append([Paragraph("<b>Numbers to keep</b>", st.cell), Paragraph(contacts, st.cell)])
    table = Table(data, colWidths=[1.75 * inch, CONTENT_WIDTH - 1.75 * inch], splitInRow=1)
    table.setStyle(
        _table_style(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -2), 0.4, RULE),
                ("BACKGROUND", (0, -1), (-1, -1), SHADE),
                ("LEFTPADDING", (0, 0), (-1, -1), 5),
                ("RIGHTPADDING", (0, 0), (-1, -1), 5),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ]
        )
    )
    return [*_heading("Safety instructions", room=2.5 * inch), table]


def _review(doc: PlanDocument) -> list[Any]:
    st = _styles()
    review = doc.review
    flow: list[Any] = _heading("Medication and interaction review", room=2.2 * inch)
    reviewed = (
        f"Reviewed {_esc(_fmt_date(review.reviewed_on))}" if review.reviewed_on else "Not reviewed"
    )
    signer = f" by {_esc(review.signed_by)}" if review.signed_by else " (review not signed)"
    counts = (
        f"{len(review.flags)} finding{'s' if len(review.flags) != 1 else ''}, "
        f"{len(review.not_checked)} entr{'ies' if len(review.not_checked) != 1 else 'y'} "
        "not checked."
    )
    flow.append(Paragraph(f"{reviewed}{signer}. {counts}", st.body))
    if review.flags:
        data: list[list[Any]] = [
            [
                Paragraph("Severity", st.header_cell),
                Paragraph("Finding", st.header_cell),
                Paragraph("Physician's decision", st.header_cell),
            ]
        ]
        widths = [1.0 * inch, 2.9 * inch]
        widths.append(CONTENT_WIDTH - sum(widths))
        severity_style: list[tuple[Any, ...]] = [
            ("FONTSIZE", (0, 1), (-1, -1), st.cell.fontSize),
            ("LEADING", (0, 1), (-1, -1), st.cell.leading),
            ("TEXTCOLOR", (1, 1), (-1, -1), INK),
            ("FONTNAME", (0, 1), (0, -1), FONT_BOLD),
        ]
        for row_index, flag in enumerate(review.flags, start=1):
            colour = _SEVERITY_COLOURS.get(flag.severity.strip().lower(), INK)
            severity_style.append(("TEXTCOLOR", (0, row_index), (0, row_index), colour))
            data.append(
                [
                    flag.severity,
                    _fit(flag.title, st.cell, widths[1] - 10),
                    _fit(flag.decision, st.cell, widths[2] - 10),
                ]
            )
        table = Table(data, colWidths=widths, repeatRows=1, splitInRow=1)
        table.setStyle(_table_style([*_grid_style(), *severity_style]))
        flow += [Spacer(1, 3), table]
    else:
        flow.append(Paragraph("No interactions were flagged.", st.body))
    if review.not_checked:
        items = _bullets(review.not_checked, st.callout)
        note = (
            "<b>Not checked.</b> KetaDesk did not recognise these entries, so they were not "
            "checked for interactions. Ask your physician or pharmacist about them:"
        )
    else:
        items = []
        note = "<b>Not checked:</b> none — every entry on the medication list was recognised."
    flow += [
        Spacer(1, 8),
        _boxed([Paragraph(note, st.callout), *items], fill=AMBER_FILL, rule=AMBER_RULE),
    ]
    return flow


_SEVERITY_COLOURS = {
    "major": colors.HexColor("#a33a2c"),
    "moderate": colors.HexColor("#9a6a12"),
    "minor": colors.HexColor("#3f6b4f"),
}


def _disclaimer_and_signature(doc: PlanDocument) -> list[Any]:
    st = _styles()
    text = _patient_text()
    disclaimer = _boxed(
        [
            Paragraph("<b>Important</b>", st.callout),
            *(Paragraph(_esc(p), st.callout) for p in text.disclaimer),
        ],
        fill=SHADE,
        rule=ACCENT,
    )
    if doc.is_signed and doc.signed_at is not None and doc.signed_by:
        signed = (
            f"Signed electronically by <b>{_esc(doc.signed_by)}</b> "
            f"on {_esc(_fmt_datetime(doc.signed_at))}."
        )
    else:
        signed = "<b>Not signed.</b> This draft is not a valid treatment plan."
    prescriber = doc.prescriber
    sign_rows = [
        [
            [
                Paragraph("Prescribing physician", st.label),
                Paragraph(f"{_esc(prescriber.full_name)} · NPI {_esc(prescriber.npi)}", st.cell),
                Paragraph(signed, st.cell),
            ],
            [
                Paragraph("Patient acknowledgement", st.label),
                Spacer(1, 20),
                Paragraph("Signature ____________________  Date ___________", st.cell),
            ],
        ]
    ]
    half = CONTENT_WIDTH / 2
    sign = Table(sign_rows, colWidths=[half, half])
    sign.setStyle(
        _table_style(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEABOVE", (0, 0), (-1, 0), 0.8, ACCENT),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    sources = [Paragraph("Sources for the instructions and disclaimer:", st.tiny)]
    sources += [Paragraph(_esc(source), st.tiny, bulletText="–") for source in text.sources]
    return [
        Spacer(1, 12),
        KeepTogether([disclaimer]),
        KeepTogether([*_heading("Signature"), sign]),
        Spacer(1, 14),
        *sources,
    ]


# --------------------------------------------------------------------------- public API


def plan_story(doc: PlanDocument) -> list[Any]:
    """Return the platypus flowables of one plan (exposed for previews and benchmarks)."""
    _register_fonts()
    return [
        *_letterhead(doc),
        *_people(doc),
        *_protocol(doc),
        *_calendar(doc),
        *_monitoring(doc),
        *_safety(doc),
        *_review(doc),
        *_disclaimer_and_signature(doc),
    ]


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
    _register_fonts()
    content_hash = plan_content_hash(doc)
    patient = doc.patient
    decor = _PageDecor(
        plan_id=doc.plan_id,
        version=doc.version,
        content_hash=content_hash,
        running_header=(
            f"{patient.full_name} · DOB {_fmt_date(patient.date_of_birth)} · MRN {patient.mrn}"
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
    on_page: Callable[[Any, Any], None] = functools.partial(_decorate_page, decor)
    template.addPageTemplates([PageTemplate(id="plan", frames=[frame], onPage=on_page)])
    canvasmaker = functools.partial(_NumberedCanvas, decor=decor)
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

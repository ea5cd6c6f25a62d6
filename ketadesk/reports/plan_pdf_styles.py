"""The plan PDF's look: fonts, page geometry, colours, paragraph styles and table building blocks.

Shared by :mod:`ketadesk.reports.plan_pdf_sections` (the plan's sections) and
:mod:`ketadesk.reports.plan_pdf_canvas` (footer, running header and watermark).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from xml.sax.saxutils import escape

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import CondPageBreak, Paragraph, Table, TableStyle

from ketadesk.core.date_styles import date_text, date_time_text, weekday_date_text
from ketadesk.resources import resource_path

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


@functools.cache
def register_fonts() -> None:
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
class PlanStyles:
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
def plan_styles() -> PlanStyles:
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
    return PlanStyles(
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


def markup(text: str) -> str:
    return escape(text).replace("\n", "<br/>")


def fmt_date(day: date, style: str) -> str:
    """``day`` in the plan's date style (``ketadesk.core.date_styles``)."""
    return date_text(day, style)


def fmt_day(day: date, style: str) -> str:
    """``day`` with its weekday, in the plan's date style."""
    return weekday_date_text(day, style)


def fmt_datetime(moment: datetime, style: str) -> str:
    """An aware moment's date in the plan's date style, its time and its zone."""
    return date_time_text(moment, style)


def fmt_number(value: float) -> str:
    """Short decimal text: 100 -> "100", 1.25 -> "1.25", 0.3333 -> "0.33"."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def or_not_recorded(value: str | None) -> str:
    return value if value else "Not recorded"


# --------------------------------------------------------------------------- building blocks


def table_style(commands: Sequence[tuple[Any, ...]]) -> TableStyle:
    """Table style whose cells default to DejaVu (reportlab would otherwise set Helvetica)."""
    return TableStyle([("FONTNAME", (0, 0), (-1, -1), FONT), *commands])


def section_heading(text: str, *, room: float = 1.6 * inch) -> list[Any]:
    """A section heading that starts a new page rather than sit alone at the bottom of one."""
    return [CondPageBreak(room), Paragraph(markup(text), plan_styles().heading)]


def fit_cell(text: str, style: ParagraphStyle, width: float) -> str | Paragraph:
    """Plain text when it fits on one line of ``width`` points, else a wrapping Paragraph.

    Plain table cells are drawn directly, without paragraph layout; plans have hundreds of
    short cells and this keeps rendering close to the raw reportlab floor. The table's style
    must give plain cells the same font, size and colour as ``style``.
    """
    if "\n" not in text and stringWidth(text, style.fontName, style.fontSize) <= width:
        return text
    return Paragraph(markup(text), style)


def key_value_table(
    rows: Sequence[tuple[str, str | Paragraph]], width: float, label_width: float
) -> Table:
    """Label / value pairs; a plain-text value is wrapped only when it is too long for one line."""
    st = plan_styles()
    value_width = width - label_width - 6
    data = [
        [
            fit_cell(label, st.label, label_width - 6),
            fit_cell(value, st.cell, value_width) if isinstance(value, str) else value,
        ]
        for label, value in rows
    ]
    table = Table(data, colWidths=[label_width, width - label_width], splitInRow=1)
    table.setStyle(
        table_style(
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


def boxed(flowables: list[Any], *, fill: Any, rule: Any, width: float = CONTENT_WIDTH) -> Table:
    box = Table([[flowables]], colWidths=[width])
    box.setStyle(
        table_style(
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


def bullets(lines: Sequence[str], style: ParagraphStyle) -> list[Paragraph]:
    return [Paragraph(markup(line), style, bulletText="•") for line in lines]


def grid_style(header_rows: int = 1) -> list[tuple[Any, ...]]:
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



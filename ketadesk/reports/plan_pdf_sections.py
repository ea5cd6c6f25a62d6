"""The sections of a plan PDF, as platypus flowables, from letterhead to signature.

Letterhead, patient and prescriber, the prescription, a dosing calendar with tick boxes,
monitoring and hold parameters, safety instructions, the interaction review (including entries
"not checked"), the disclaimer and the signature. The disclaimer and safety instructions are
clinical text and live in ``resources/plan/patient_instructions.json``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.units import inch
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Image, KeepTogether, Paragraph, Spacer, Table

from ketadesk.reports.plan_document import CalendarRow, PlanDocument, shown_calendar_rows
from ketadesk.reports.plan_pdf_canvas import DRAFT_WATERMARK
from ketadesk.reports.plan_pdf_styles import (
    ACCENT,
    AMBER_FILL,
    AMBER_RULE,
    CONTENT_WIDTH,
    FONT,
    FONT_BOLD,
    INK,
    MUTED,
    RULE,
    SHADE,
    WATERMARK,
    boxed,
    bullets,
    fit_cell,
    fmt_date,
    fmt_datetime,
    fmt_day,
    fmt_number,
    grid_style,
    key_value_table,
    markup,
    or_not_recorded,
    plan_styles,
    register_fonts,
    section_heading,
    table_style,
)
from ketadesk.resources import load_validated_json

TICK_BOX = "☐"


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


# --------------------------------------------------------------------------- sections


def _letterhead(doc: PlanDocument) -> list[Any]:
    st = plan_styles()
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
    left.append(Paragraph(markup(practice.name), st.practice))
    left.append(Paragraph(markup(practice.address), st.small))
    left.append(Paragraph(f"Phone {markup(practice.phone)}", st.small))

    if doc.is_signed and doc.signed_at is not None:
        status = f"Signed {markup(fmt_date(doc.signed_at.date(), doc.date_style))}"
    else:
        status = "Draft — not signed"
    right = [
        Paragraph(markup(doc.title), st.title),
        Paragraph(f"Version {doc.version} · {status}", st.title_meta),
        Paragraph(f"Plan {markup(doc.plan_id)}", st.title_meta),
    ]
    head = Table([[left, right]], colWidths=[CONTENT_WIDTH * 0.46, CONTENT_WIDTH * 0.54])
    head.setStyle(
        table_style(
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
            boxed(
                [
                    Paragraph(
                        f"<b>{markup(DRAFT_WATERMARK)}.</b> This preview has not been signed by "
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
    st = plan_styles()
    patient_rows: list[tuple[str, str | Paragraph]] = [
        ("Name", Paragraph(f"<b>{markup(patient.full_name)}</b>", st.cell)),
        ("Date of birth", fmt_date(patient.date_of_birth, doc.date_style)),
        ("MRN", patient.mrn),
        ("State", patient.state),
    ]
    prescriber_rows: list[tuple[str, str | Paragraph]] = [
        ("Name", Paragraph(f"<b>{markup(prescriber.full_name)}</b>", st.cell)),
        ("NPI", prescriber.npi),
        ("Licensed in", ", ".join(prescriber.licence_states) or "Not recorded"),
        ("Phone", doc.practice.phone),
    ]
    support_rows: list[tuple[str, str | Paragraph]] = [
        (
            "Sitter",
            or_not_recorded(patient.sitter_name)
            + (f" · {patient.sitter_phone}" if patient.sitter_phone else ""),
        ),
        (
            "Emergency contact",
            or_not_recorded(patient.emergency_contact_name)
            + (
                f" ({patient.emergency_contact_relationship})"
                if patient.emergency_contact_relationship
                else ""
            )
            + (f" · {patient.emergency_contact_phone}" if patient.emergency_contact_phone else ""),
        ),
    ]
    left = [
        Paragraph("Patient", st.heading),
        key_value_table(patient_rows, half, 1.05 * inch),
    ]
    right = [
        Paragraph("Prescribing physician", st.heading),
        key_value_table(prescriber_rows, half, 1.05 * inch),
    ]
    pair = Table([[left, right]], colWidths=[half + 18, half])
    pair.setStyle(
        table_style(
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
        *section_heading("Support on dosing days"),
        key_value_table(support_rows, CONTENT_WIDTH, 1.4 * inch),
    ]


def _protocol(doc: PlanDocument) -> list[Any]:
    p = doc.protocol
    st = plan_styles()
    dose = (
        f"<b>{fmt_number(p.dose_mg)} mg</b> per dose "
        f"({fmt_number(p.mg_per_kg)} mg/kg at {fmt_number(p.weight_kg)} kg, "
        f"weighed {markup(fmt_date(p.weight_date, doc.date_style))})"
    )
    titration = (
        "<br/>".join(f"{i}. {markup(step)}" for i, step in enumerate(p.titration_steps, 1))
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
        ("Maximum dose", f"{fmt_number(p.max_dose_mg)} mg per dose — never take more"),
        ("Duration", p.duration),
        ("Supply", f"{p.supply_per_30_days} per 30 days · refills: {p.refills}"),
    ]
    sig = boxed(
        [
            Paragraph("<b>Directions (sig)</b>", st.label),
            Paragraph(markup(p.sig), st.body),
        ],
        fill=SHADE,
        rule=ACCENT,
    )
    return [
        *section_heading("Your prescription", room=3.5 * inch),
        key_value_table(rows, CONTENT_WIDTH, 1.4 * inch),
        Spacer(1, 6),
        sig,
    ]


def _calendar(doc: PlanDocument) -> list[Any]:
    st = plan_styles()
    rows = shown_calendar_rows(doc)
    flow: list[Any] = section_heading("Dosing calendar", room=2.4 * inch)
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
    style = grid_style()
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
        data.append(_calendar_cells(row, week, doc.date_style))
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
    # The longest written date (a long-form September Wednesday) sets the date column.
    longest = max(stringWidth(str(cells[1]), FONT, 9) for cells in data[1:])
    col_widths[1] = max(col_widths[1], longest + 14)
    col_widths.append(CONTENT_WIDTH - sum(col_widths))
    table = Table(data, colWidths=col_widths, repeatRows=1, splitInRow=1)
    table.setStyle(table_style(style))
    flow.append(table)
    return flow


def _calendar_cells(row: CalendarRow, week: int, date_style: str) -> list[Any]:
    if row.dose_mg is None:
        dose, per_kg = "No dose", "—"
    else:
        dose = f"{fmt_number(row.dose_mg)} mg"
        per_kg = fmt_number(row.mg_per_kg) if row.mg_per_kg is not None else "—"
    notes: Any = ""
    if row.events:
        notes = Paragraph("<br/>".join(markup(event) for event in row.events), plan_styles().cell)
    return [TICK_BOX, fmt_day(row.day, date_style), str(week), dose, per_kg, notes]


def _monitoring(doc: PlanDocument) -> list[Any]:
    st = plan_styles()
    m = doc.monitoring
    flow: list[Any] = section_heading("Monitoring plan", room=2.2 * inch)
    flow += bullets(m.lines, st.body) or [Paragraph("No monitoring lines recorded.", st.body)]
    holds = bullets(m.hold_parameters, st.callout) or [
        Paragraph("No hold parameters recorded — ask your physician before dosing.", st.callout)
    ]
    flow += [
        Spacer(1, 6),
        boxed(
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
    st = plan_styles()
    text = _patient_text()
    data = []
    for item in text.instructions:
        data.append(
            [
                Paragraph(f"<b>{markup(item.heading)}</b>", st.cell),
                Paragraph(markup(item.text), st.cell),
            ]
        )
    patient = doc.patient
    contacts = (
        f"Practice: <b>{markup(doc.practice.phone)}</b> · "
        f"Sitter: {markup(or_not_recorded(patient.sitter_name))}"
        + (f", {markup(patient.sitter_phone)}" if patient.sitter_phone else "")
        + " · Emergencies: <b>911</b> · Mental-health crisis: call or text <b>988</b>"
    )
    data.append([Paragraph("<b>Numbers to keep</b>", st.cell), Paragraph(contacts, st.cell)])
    table = Table(data, colWidths=[1.75 * inch, CONTENT_WIDTH - 1.75 * inch], splitInRow=1)
    table.setStyle(
        table_style(
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
    return [*section_heading("Safety instructions", room=2.5 * inch), table]


def _review(doc: PlanDocument) -> list[Any]:
    st = plan_styles()
    review = doc.review
    flow: list[Any] = section_heading("Medication and interaction review", room=2.2 * inch)
    reviewed = (
        f"Reviewed {markup(fmt_date(review.reviewed_on, doc.date_style))}"
        if review.reviewed_on
        else "Not reviewed"
    )
    signer = f" by {markup(review.signed_by)}" if review.signed_by else " (review not signed)"
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
                    fit_cell(flag.title, st.cell, widths[1] - 10),
                    _decision_cell(flag.decision, flag.patient_note, widths[2] - 10),
                ]
            )
        table = Table(data, colWidths=widths, repeatRows=1, splitInRow=1)
        table.setStyle(table_style([*grid_style(), *severity_style]))
        flow += [Spacer(1, 3), table]
    else:
        flow.append(Paragraph("No interactions were flagged.", st.body))
    read = set(review.read_by_physician)
    unread = [item for item in review.not_checked if item not in read]
    read_items = [item for item in review.not_checked if item in read]
    box: list[Any] = []
    if read_items:
        who = markup(review.signed_by) if review.signed_by else "your physician"
        box.append(Paragraph(
            "<b>Read by your physician, not checked by the software.</b> KetaDesk did not "
            f"recognise these entries, so it did not check them for interactions; {who} read "
            "each of them before signing this review:",
            st.callout,
        ))
        box += bullets(read_items, st.callout)
    if unread:
        if box:
            box.append(Spacer(1, 4))
        box.append(Paragraph(
            "<b>Not checked.</b> KetaDesk did not recognise these entries, so they were not "
            "checked for interactions. Ask your physician or pharmacist about them:",
            st.callout,
        ))
        box += bullets(unread, st.callout)
    if not box:
        box.append(Paragraph(
            "<b>Not checked:</b> none — every entry on the medication list was recognised.",
            st.callout,
        ))
    flow += [Spacer(1, 8), boxed(box, fill=AMBER_FILL, rule=AMBER_RULE)]
    return flow


def _decision_cell(decision: str, patient_note: str | None, width: float) -> Any:
    """The decision in patient words and, only when the physician marked it for the patient,
    their note under it."""
    st = plan_styles()
    if not patient_note:
        return fit_cell(decision, st.cell, width)
    return Paragraph(
        f"{markup(decision)}<br/><b>Note from your physician:</b> {markup(patient_note)}",
        st.cell,
    )


_SEVERITY_COLOURS = {
    "major": colors.HexColor("#a33a2c"),
    "moderate": colors.HexColor("#9a6a12"),
    "minor": colors.HexColor("#3f6b4f"),
}


def _disclaimer_and_signature(doc: PlanDocument) -> list[Any]:
    st = plan_styles()
    text = _patient_text()
    disclaimer = boxed(
        [
            Paragraph("<b>Important</b>", st.callout),
            *(Paragraph(markup(p), st.callout) for p in text.disclaimer),
        ],
        fill=SHADE,
        rule=ACCENT,
    )
    if doc.is_signed and doc.signed_at is not None and doc.signed_by:
        signed = (
            f"Signed electronically by <b>{markup(doc.signed_by)}</b> "
            f"on {markup(fmt_datetime(doc.signed_at, doc.date_style))}."
        )
    else:
        signed = "<b>Not signed.</b> This draft is not a valid treatment plan."
    prescriber = doc.prescriber
    sign_rows = [
        [
            [
                Paragraph("Prescribing physician", st.label),
                Paragraph(
                    f"{markup(prescriber.full_name)} · NPI {markup(prescriber.npi)}", st.cell
                ),
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
        table_style(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEABOVE", (0, 0), (-1, 0), 0.8, ACCENT),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    sources = [Paragraph("Sources for the instructions and disclaimer:", st.tiny)]
    sources += [Paragraph(markup(source), st.tiny, bulletText="–") for source in text.sources]
    return [
        Spacer(1, 12),
        KeepTogether([disclaimer]),
        KeepTogether([*section_heading("Signature"), sign]),
        Spacer(1, 14),
        *sources,
    ]


def plan_story(doc: PlanDocument) -> list[Any]:
    """Return the platypus flowables of one plan (exposed for previews and benchmarks)."""
    register_fonts()
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



"""CSV cells that a spreadsheet cannot run: text starting with = + - @ (or a tab or carriage
return) would be read by Excel or LibreOffice as a formula (``=HYPERLINK(...)``), so every CSV
KetaDesk writes passes each cell through ``spreadsheet_safe``."""

from __future__ import annotations

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> str:
    """``value`` as text, with a leading apostrophe when it would start a formula.

    Plain numbers (including negative ones such as ``-12``) are left as they are.
    """
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_STARTS) and not _is_plain_number(text):
        return "'" + text
    return text


def _is_plain_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text and text[:1] in "+-" and text[1:2].isdigit()

"""Reading a CSV file's bytes as text: which encoding it uses, and refusing what cannot be trusted.

UTF-8 (with or without byte-order mark) and UTF-16 with a byte-order mark are read as such;
Windows-1252 / Latin-1 only when the reading is unambiguous. Mixed, binary and unrecognisable
files are refused with a message that tells the clinician how to save the file again.
"""

from __future__ import annotations

import re

from ketadesk.core.errors import UserFacingError

#: Largest CSV file accepted (bytes).
MAX_FILE_BYTES = 50 * 1024 * 1024

_ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (with byte-order mark)",
    "utf-16": "UTF-16",
    "cp1252": "Windows-1252 (Western European)",
    "latin-1": "Latin-1 (ISO-8859-1)",
}
# UTF-8 bytes read as Windows-1252: "Ã©" for "é", "Ã±" for "ñ", "â€™" for "’".
_MOJIBAKE = re.compile(
    "[ÂÃÄÅ][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6"
    "\u02dc\u2013-\u203a\u20ac\u2122]|â€"
)


# Control characters (Unicode category Cc) other than tab and line breaks, and the
# replacement character left behind by an earlier failed decoding.
_BINARY_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")


def _has_binary_controls(text: str) -> bool:
    return _BINARY_CONTROLS.search(text) is not None


def _looks_like_other_8bit_encoding(text: str) -> bool:
    """True when Windows-1252 decoding gives words made only of accented letters.

    Western European names have an accent here and there ("Núñez"); runs such as "Ïåòðîâ"
    are a Cyrillic or Greek file read with the wrong code page.
    """
    odd_words = 0
    accented_words = 0
    for word in re.findall(r"[^\W\d_]+", text):
        high = sum(1 for ch in word if ord(ch) > 127)
        if high:
            accented_words += 1
            if len(word) >= 3 and high == len(word):
                odd_words += 1
    return accented_words > 0 and odd_words * 4 > accented_words


def decode_csv_bytes(data: bytes) -> tuple[str, str]:
    """Return (text, encoding label) for a CSV file's bytes.

    UTF-8 (with or without byte-order mark) and UTF-16 with a byte-order mark are read as
    such; other files are read as Windows-1252/Latin-1 when that is unambiguous. Raises
    UserFacingError for empty, binary, mixed-encoding or unrecognisable files.
    """
    if len(data) > MAX_FILE_BYTES:  # first: the size is known without looking at the bytes
        raise UserFacingError(
            f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; split it into "
            "smaller files."
        )
    if not data.strip(b" \t\r\n\x00\xef\xbb\xbf\xfe\xff"):
        raise UserFacingError("The file is empty.")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text, encoding = data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise UserFacingError(
                "The file says it is UTF-16 text but is damaged. Save it again as CSV UTF-8."
            ) from None
    elif data.startswith(b"\xef\xbb\xbf"):
        try:
            text, encoding = data.decode("utf-8-sig"), "utf-8-sig"
        except UnicodeDecodeError:
            raise UserFacingError(
                "The file says it is UTF-8 but contains bytes that are not UTF-8. Save it "
                "again from your spreadsheet as 'CSV UTF-8'."
            ) from None
    else:
        if b"\x00" in data:
            raise UserFacingError(
                "This does not look like a CSV text file (it contains binary data)."
            )
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = _decode_legacy(data)
    if _has_binary_controls(text):
        raise UserFacingError("This does not look like a CSV text file (it contains binary data).")
    return text, _ENCODING_LABELS[encoding]


def _decode_legacy(data: bytes) -> tuple[str, str]:
    refuse = UserFacingError(
        "KetaDesk could not tell which text encoding this file uses, so names could come out "
        "wrong. Save it from your spreadsheet as 'CSV UTF-8' and try again."
    )
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        # Bytes 0x81, 0x8D, 0x8F, 0x90, 0x9D mean nothing in Windows-1252; in Latin-1 they
        # are invisible control codes, so neither reading is trustworthy.
        raise refuse from None
    if _MOJIBAKE.search(text):
        raise UserFacingError(
            "Part of this file is UTF-8 and part is another encoding, so names would come out "
            "garbled. Save it from your spreadsheet as 'CSV UTF-8' and try again."
        )
    if _looks_like_other_8bit_encoding(text):
        raise refuse
    uses_cp1252_only = any(0x80 <= b <= 0x9F for b in data)
    return text, "cp1252" if uses_cp1252_only else "latin-1"

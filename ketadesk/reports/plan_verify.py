"""Read a printed plan's identity (plan id, version, content hash) back out of its PDF.

The renderer stores the identity twice: in the PDF's document information
(``/KetaDeskPlanHash``, ``/KetaDeskPlanId``, ``/KetaDeskPlanVersion``) and in the footer text of
every page. Both must agree; the database side then compares the hash with the stored hash of the
signed protocol version. Nothing here decides whether a plan is genuine on its own.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError, PyPdfError

from ketadesk.core.errors import UserFacingError
from ketadesk.reports.plan_document import PlanDocument
from ketadesk.reports.plan_pdf import render_plan_pdf
from ketadesk.reports.plan_pdf_canvas import INFO_KEY_HASH, INFO_KEY_PLAN_ID, INFO_KEY_VERSION

_HASH = re.compile(r"Content hash \(SHA-256\):\s*([0-9a-f]{64})")
_PASSWORD_NEEDED = "This plan is password-protected; enter its password."
_PASSWORD_WRONG = "That password does not open this plan; enter its password again."
_DAMAGED = "This file is damaged or is not a PDF, so the plan cannot be checked."
_FOREIGN = "This PDF is not a KetaDesk treatment plan (it carries no plan identity)."

# pypdf logs warnings about broken files; they say nothing the user-facing error does not.
logging.getLogger("pypdf").setLevel(logging.ERROR)


@dataclass(frozen=True)
class PlanIdentity:
    """Who a printed plan claims to be: plan id, version number and SHA-256 content hash."""

    plan_id: str
    version: int
    content_hash: str


def _open(pdf_bytes: bytes, password: str | None) -> PdfReader:
    if not pdf_bytes.lstrip()[:5].startswith(b"%PDF"):
        raise UserFacingError(_DAMAGED)
    try:
        reader = PdfReader(io.BytesIO(pdf_bytes))
    except (PdfReadError, PyPdfError, ValueError, KeyError, OSError) as error:
        raise UserFacingError(_DAMAGED) from error
    if reader.is_encrypted:
        if not password:
            raise UserFacingError(_PASSWORD_NEEDED)
        try:
            opened = reader.decrypt(password)
        except (PdfReadError, PyPdfError, ValueError, NotImplementedError) as error:
            raise UserFacingError(_DAMAGED) from error
        if not opened:
            raise UserFacingError(_PASSWORD_WRONG)
    return reader


def _page_texts(reader: PdfReader) -> list[str]:
    try:
        return [page.extract_text() or "" for page in reader.pages]
    except FileNotDecryptedError as error:
        raise UserFacingError(_PASSWORD_NEEDED) from error
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise UserFacingError(_DAMAGED) from error


def extract_plan_text(pdf_bytes: bytes, password: str | None = None) -> str:
    """Return the text of every page of a plan PDF, pages separated by form feeds."""
    return "\f".join(_page_texts(_open(pdf_bytes, password)))


def read_plan_identity(pdf_bytes: bytes, password: str | None = None) -> PlanIdentity:
    """Return the plan id, version and content hash printed in a KetaDesk plan PDF.

    Raises :class:`UserFacingError` for a damaged file, a PDF that is not a KetaDesk plan, an
    encrypted plan opened without its password (or with the wrong one), and a plan whose
    metadata hash disagrees with the hash printed on its pages (a sign of tampering).
    """
    reader = _open(pdf_bytes, password)
    try:
        info: Mapping[str, object] = reader.metadata or {}
        meta_hash = str(info.get(INFO_KEY_HASH, "") or "")
        plan_id = str(info.get(INFO_KEY_PLAN_ID, "") or "")
        version_text = str(info.get(INFO_KEY_VERSION, "") or "")
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError) as error:
        raise UserFacingError(_DAMAGED) from error
    if not (meta_hash and plan_id and version_text.isdigit()):
        raise UserFacingError(_FOREIGN)
    if not re.fullmatch(r"[0-9a-f]{64}", meta_hash):
        raise UserFacingError("This plan's content hash is malformed; the file has been altered.")

    page_texts = _page_texts(reader)
    printed = [_HASH.search(text) for text in page_texts]
    if not page_texts or any(match is None for match in printed):
        raise UserFacingError("A page of this plan has lost its footer; the file has been altered.")
    printed_hashes = {match.group(1) for match in printed if match is not None}
    if printed_hashes != {meta_hash}:
        raise UserFacingError(
            "The hash printed on this plan's pages does not agree with the hash stored in the "
            "file; the file has been altered."
        )
    return PlanIdentity(plan_id=plan_id, version=int(version_text), content_hash=meta_hash)


def printed_plan_matches(pdf_bytes: bytes, doc: PlanDocument, password: str | None = None) -> bool:
    """True when the PDF's printed text is exactly what ``doc`` renders to, page by page.

    The content hash proves which data a plan claims to show; this proves the pages really show
    it (someone who edits a dose on the page but keeps the footer is caught here). ``doc`` must be
    built as it was for export (same ``calendar_weeks_shown`` and draft flag).
    """
    printed = _page_texts(_open(pdf_bytes, password))
    expected = _page_texts(_open(render_plan_pdf(doc), None))
    return printed == expected

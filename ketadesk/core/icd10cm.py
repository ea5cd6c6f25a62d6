"""Offline ICD-10-CM code list: look a code up, or search codes and descriptions as you type.

The list ships as ``resources/kb/icd10cm_codes.tsv.gz`` (code with its dot, a tab, the
description; one code a line), derived from the CMS ICD-10-CM release that the
``simple-icd-10-cm`` package carries (see ``resources/kb/ICD10CM.md``). It is read once, on
first use, never at import. Pure functions; no Qt.
"""

from __future__ import annotations

import functools
import gzip
import re
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path

from ketadesk.core.knowledge_base import KnowledgeBaseError, canonical_key
from ketadesk.resources import resource_path

_CODE_RE = re.compile(r"^[A-Z][0-9]{2}(?:\.[0-9A-Z]{0,4})?$")
_NOT_WORD = re.compile(r"[^a-z0-9\n]+")


@dataclass(frozen=True)
class Icd10cmCode:
    """One ICD-10-CM code (with its dot, e.g. ``"F33.1"``) and its official description."""

    code: str
    description: str


@dataclass(frozen=True, eq=False)
class Icd10cmIndex:
    """The code list as parallel columns, sorted by code without its dot (prefix search)."""

    version: str
    codes: tuple[str, ...]
    descriptions: tuple[str, ...]
    keys: tuple[str, ...]
    position: dict[str, int]

    def entry(self, position: int) -> Icd10cmCode:
        """The code at ``position`` in the sorted list."""
        return Icd10cmCode(self.codes[position], self.descriptions[position])


def default_code_list() -> Path:
    """Path of the shipped code list (works from source and from the bundle)."""
    return resource_path("kb") / "icd10cm_codes.tsv.gz"


@functools.cache
def load_icd10cm(path: Path | None = None) -> Icd10cmIndex:
    """Read and index the code list once per process (about 47,000 codes, sorted on disk)."""
    path = path or default_code_list()
    try:
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as error:
        raise KnowledgeBaseError(
            f"The ICD-10-CM code list cannot be read ({type(error).__name__})."
        ) from None
    header, _, body = text.partition("\n")
    rows = [line.split("\t", 1) for line in body.splitlines() if line]
    codes, descriptions = zip(*rows, strict=True) if rows else ((), ())
    keys = tuple(code.replace(".", "") for code in codes)
    return Icd10cmIndex(
        version=header.removeprefix("# ").strip(),
        codes=tuple(codes),
        descriptions=tuple(descriptions),
        keys=keys,
        position={key: i for i, key in enumerate(keys)},
    )


@functools.cache
def _word_index(index: Icd10cmIndex) -> dict[str, tuple[int, ...]]:
    """Each description word -> positions of the codes using it (built on the first search)."""
    joined = "\n".join(index.descriptions).lower().replace("'", "")
    positions: dict[str, list[int]] = {}
    for position, line in enumerate(_NOT_WORD.sub(" ", joined).split("\n")):
        for word in set(line.split()):
            positions.setdefault(word, []).append(position)
    return {word: tuple(found) for word, found in positions.items()}


def icd10cm_code(code: str, index: Icd10cmIndex | None = None) -> Icd10cmCode | None:
    """The entry for a typed code ("f331", "F33.1"), or None when it is not a code.

    A seven-character injury code ("S06.9X0A") is read by its listed parent ("S06.9X0").
    """
    index = index or load_icd10cm()
    key = code.strip().upper().replace(".", "")
    if key in index.position:
        return index.entry(index.position[key])
    if len(key) == 7 and key[:6] in index.position:
        return index.entry(index.position[key[:6]])
    return None


def icd10cm_search(
    text: str, limit: int = 20, index: Icd10cmIndex | None = None
) -> tuple[Icd10cmCode, ...]:
    """Codes for a typed prefix: by code ("I71" lists I71 and below, shortest first), or by
    words of the description ("aortic aneur" finds codes whose words start so)."""
    index = index or load_icd10cm()
    typed = text.strip().upper()
    if not typed:
        return ()
    if _CODE_RE.match(typed):
        prefix = typed.replace(".", "")
        start = bisect_left(index.keys, prefix)
        found = []
        for position in range(start, len(index.keys)):
            if not index.keys[position].startswith(prefix):
                break
            found.append(index.entry(position))
        found.sort(key=lambda c: (len(c.code), c.code))
        return tuple(found[:limit])
    parts = canonical_key(text).split()
    if not parts:
        return ()
    words = _word_index(index)
    matching: set[int] | None = None
    for part in parts:
        hits = {p for word, found in words.items() if word.startswith(part) for p in found}
        matching = hits if matching is None else matching & hits
        if not matching:
            return ()
    out = [index.entry(position) for position in sorted(matching or ())]
    out.sort(key=lambda c: (len(c.description), c.code))
    return tuple(out[:limit])

"""The roster search finds the same patients on a practice file (FTS5 and LIKE) and on a
practice server (PostgreSQL full-text and trigram indexes): every form of what people type,
checked against the search's meaning worked out here in Python, on both back ends, through
every way a page is fetched (all matches sorted, the sort order walked, counted up to a cap).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import select, update

from ketadesk.core.demographics import PatientDemographics
from ketadesk.core.search_text import parse_search_query
from ketadesk.models.patients import Patient
from ketadesk.storage.demo.demo_data import populate_demo_patients
from ketadesk.storage.patients.patients import create_patient
from ketadesk.storage.roster import roster_query as rq

TODAY = date(2026, 3, 15)
# Synthetic people whose names have what real names have: accents, letters NFKD does not
# split (Ł, Ø, ß), hyphens, straight and curly apostrophes, several words, other scripts.
NAMED = {
    "zoe": ("Zoë", "Ñúñez-Łukasiewicz", date(1980, 2, 1), "(305) 555-0142"),
    "siobhan": ("Siobhán", "O'Brien", date(1975, 7, 4), "(201) 555-0199"),
    "mary_kate": ("Mary-Kate", "D’Arcy", date(1990, 11, 29), "(973) 555-0101"),
    "jose": ("José Luis", "García Márquez", date(1962, 12, 31), "(786) 555-0123"),
    "oystein": ("Øystein", "Strauß", date(2001, 5, 6), "(856) 555-0177"),
    "anne_marie": ("Anne-Marie", "St. John", date(1988, 8, 8), "(305) 555-0100"),
    "renee": ("Renée", "L'Heureux", date(1970, 1, 2), "(609) 555-0188"),
    "anna": ("Анна", "Петрова", date(1985, 3, 3), "(904) 555-0155"),
    "dimitris": ("Δημήτρης", "Παπαδόπουλος", date(1979, 9, 9), "(407) 555-0166"),
}


@dataclass(frozen=True)
class _Row:
    patient_id: int
    mrn: str
    words: tuple[str, ...]
    dob: date
    phone_digits: str
    external_id: str | None


@pytest.fixture
def searchable(practice_on):
    """The named people above (added through the patient service, which folds their names as
    the app does), 120 demo patients, one of them with another system's record number."""
    practice = practice_on
    named: dict[str, int] = {}
    with practice.db.session() as s:
        for key, (first, last, dob, phone) in NAMED.items():
            draft = PatientDemographics(
                first_name=first, last_name=last, dob=dob, sex="F", state="FL",
                county="Miami-Dade", phone=phone,
            )  # fmt: skip
            record = create_patient(
                s, practice.physician, draft, today=TODAY, allow_duplicate=True
            )
            named[key] = record.id
        # After them: the demo numbers its patients itself (a server's id sequence stays).
        populate_demo_patients(s, 120, entered_by=practice.physician.user_name, today=TODAY)
        s.execute(update(Patient).where(Patient.id == 31).values(external_id="ACME-00417"))
    with practice.db.session() as s:
        rq.prepare_roster(s)  # as the roster does once, before its reads (columns registered)
    return practice, named


def _rows(practice) -> list[_Row]:
    columns = (
        Patient.id, Patient.mrn, Patient.first_name_folded, Patient.last_name_folded,
        Patient.dob, Patient.phone_digits, Patient.external_id,
    )  # fmt: skip
    with practice.db.session() as s:
        return [
            _Row(pid, mrn, tuple(f"{first} {last}".split()), dob, phone or "", external)
            for pid, mrn, first, last, dob, phone, external in s.execute(select(*columns))
        ]


def _meant(rows: list[_Row], text: str) -> set[int]:
    """The patients ``text`` means, from the search's definition (``parse_search_query``):
    each name word a prefix of a word of the name; a date of birth, phone digits, an MRN's
    start or end (any of them for bare digits); or another system's number by its start."""
    query = parse_search_query(text)
    word = query.text if " " not in query.text and any(c.isdigit() for c in query.text) else ""
    found = set()
    for row in rows:
        names = all(any(w.startswith(t) for w in row.words) for t in query.name_terms)
        readings = []
        if query.dob is not None:
            readings.append(row.dob == query.dob)
        if query.phone_digits:
            readings.append(query.phone_digits in row.phone_digits)
        if query.mrn_prefix:
            readings.append(row.mrn.startswith(query.mrn_prefix))
        if query.mrn_suffix:
            readings.append(row.mrn.endswith(query.mrn_suffix))
        rest = any(readings) if query.digits_only else all(readings)
        external = bool(word) and row.external_id is not None and (
            row.external_id.startswith(word) or row.external_id.startswith(word.upper())
        )
        if (names and rest) or external:
            found.add(row.patient_id)
    return found


TYPED = (
    # accents, either way round
    "zoe", "ZOË", "ñúñ", "luk", "lukasiewicz zo", "Łukasiewicz", "garcia marq", "Márquez j",
    "renee", "Renée l'h",
    # hyphenated names: either half, or both as typed
    "nunez-luk", "mary-kate", "kate", "anne-marie st", "marie",
    # apostrophes: straight, curly, or left out
    "o'brien", "O’Brien", "obrien", "siob o'b", "d'arcy", "D’Arcy mary", "darcy", "l'heureux",
    # letters that do not decompose, other scripts
    "strauss", "Strauß", "øy", "oystein", "анна", "Петр", "δημήτρης", "ΠΑΠΑΔ",
    # not a word's start; several words that never meet
    "ukasiewicz", "zoe strauss",
    # MRN prefixes and endings
    "KD-0000", "kd-00001", "KD00001", "KD-", "KD1", "KD12", "7", "12", "123",
    # phone digits and numbers
    "555-01", "(305) 555-0142", "3055550142", "0142", "555", "305",
    # dates of birth
    "02/01/1980", "1980-02-01", "2/1/80", "02011980", "11/29/90", "11-29-1990", "12/31/1962",
    # mixed, and another system's number
    "zoe 1980-02-01", "mary 11/29/1990", "zoe KD-0000", "ACME-004", "acme-00417",
)


def test_every_typed_form_finds_the_same_patients_on_both_back_ends(searchable) -> None:
    practice, named = searchable
    rows = _rows(practice)
    # The definition is not vacuous where it matters: the named people are found.
    for text, key in (
        ("zoe", "zoe"), ("ñúñ", "zoe"), ("o'brien", "siobhan"), ("O’Brien", "siobhan"),
        ("obrien", "siobhan"), ("d'arcy", "mary_kate"), ("kate", "mary_kate"),
        ("Strauß", "oystein"), ("øy", "oystein"), ("анна", "anna"), ("ΠΑΠΑΔ", "dimitris"),
        ("anne-marie st", "anne_marie"), ("l'heureux", "renee"), ("garcia marq", "jose"),
        ("(305) 555-0142", "zoe"), ("11/29/90", "mary_kate"), ("12/31/1962", "jose"),
    ):  # fmt: skip
        assert named[key] in _meant(rows, text), text
    assert _meant(rows, "ukasiewicz") == set()
    assert _meant(rows, "ACME-004") == {31}
    with practice.db.read_session() as s:
        for text in TYPED:
            meant = _meant(rows, text)
            roster_filter = rq.RosterFilter(search_text=text)
            result = rq.query_roster(s, roster_filter, limit=1000)
            found = [r.patient_id for r in result.rows]
            assert set(found) == meant, text
            assert (result.total, result.total_is_lower_bound) == (len(meant), False), text
            assert rq.count_roster(s, roster_filter) == len(meant), text
            for strategy in (rq.LOOKUP, rq.WALK, rq.ROWS):
                page = rq.fetch_roster_page(s, roster_filter, limit=1000, strategy=strategy)
                assert [r.patient_id for r in page] == found, (text, strategy)
            # Counted up to a cap below the matches: the search is broad, so the sort order
            # is walked (on a server in the same statement as the count) and stops early.
            capped = rq.query_roster(s, roster_filter, limit=2, count_cap=3)
            assert [r.patient_id for r in capped.rows] == found[:2], text
            broad = len(meant) > 3
            assert capped.total_is_lower_bound == broad, text
            assert capped.total == (3 if broad else len(meant)), text
            if broad:  # the next page continues the walked order
                more = rq.fetch_roster_page(
                    s, roster_filter, offset=2, limit=2, strategy=capped.strategy
                )
                assert [r.patient_id for r in more] == found[2:4], text


def test_a_search_with_filters_counts_only_what_it_shows(searchable) -> None:
    """The count of a search with a state filter (on a server, in the page's own statement)
    is of the patients shown, not of the search alone."""
    practice, named = searchable
    with practice.db.session() as s:
        s.execute(update(Patient).where(Patient.id == named["zoe"]).values(state="NJ"))
        in_nj = {pid for (pid,) in s.execute(select(Patient.id).where(Patient.state == "NJ"))}
    rows = _rows(practice)
    with practice.db.read_session() as s:
        for text in ("zoe", "555", "KD-0000", "a", "7"):
            meant = _meant(rows, text) & in_nj
            result = rq.query_roster(s, rq.RosterFilter(text, states=frozenset({"NJ"})))
            assert {r.patient_id for r in result.rows} == meant, text
            assert (result.total, result.total_is_lower_bound) == (len(meant), False), text
            capped = rq.query_roster(
                s, rq.RosterFilter(text, states=frozenset({"NJ"})), limit=1, count_cap=1
            )
            assert capped.total_is_lower_bound == (len(meant) > 1), text
    assert named["zoe"] in _meant(rows, "zoe") & in_nj

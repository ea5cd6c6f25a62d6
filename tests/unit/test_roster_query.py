"""Roster search, filters, sort and paging in SQL, on a real encrypted database."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import literal, update

from ketadesk.models.patients import Patient
from ketadesk.storage import roster_query as rq
from ketadesk.storage.demo_data import populate_demo_patients


@pytest.fixture
def roster(practice):
    with practice.db.session() as s:
        populate_demo_patients(s, 300, entered_by="drquill", today=date(2026, 3, 15))
        # Known rows to search for.
        s.execute(
            update(Patient)
            .where(Patient.id == 7)
            .values(
                first_name="Zoë",
                first_name_folded="zoe",
                last_name="Ñúñez-Łukasiewicz",
                last_name_folded="nunez lukasiewicz",
                dob=date(1980, 2, 1),
                phone="(305) 555-0142",
                phone_digits="3055550142",
                state="NJ",
                status="paused",
            )
        )
    return practice


def ids(practice, text="", **kw):
    sort = kw.pop("sort", rq.RosterSort.NAME)
    ascending = kw.pop("ascending", True)
    with practice.db.session() as s:
        f = rq.RosterFilter(search_text=text, **kw)
        rows = rq.fetch_roster_page(s, f, sort=sort, ascending=ascending, limit=1000)
        assert rq.count_roster(s, f) == len(rows)
        return [r.patient_id for r in rows]


def test_empty_search_lists_everyone_in_name_order(roster) -> None:
    with roster.db.session() as s:
        rows = rq.fetch_roster_page(s, rq.RosterFilter(), limit=1000)
    assert len(rows) == 300
    keys = [(r.last_name, r.first_name) for r in rows]
    from ketadesk.core.search_text import fold_for_search

    folded = [(fold_for_search(a), fold_for_search(b)) for a, b in keys]
    assert folded == sorted(folded)


def test_name_search_is_diacritics_insensitive_and_word_prefix(roster) -> None:
    assert 7 in ids(roster, "Zoe")
    assert 7 in ids(roster, "zoë ñúñ")
    assert 7 in ids(roster, "luka")
    assert ids(roster, "zoe lukasiewicz") == [i for i in ids(roster, "lukasiewicz zo")]
    for patient_id in ids(roster, "zoe"):
        with roster.db.session() as s:
            row = s.get(Patient, patient_id)
            assert "zoe" in row.first_name_folded.split() or row.last_name_folded.startswith("zoe")
    assert ids(roster, "ukasiewicz") == []  # a word prefix, not any substring


def test_dob_in_both_formats_mrn_and_phone(roster) -> None:
    assert ids(roster, "1980-02-01") == ids(roster, "02/01/1980")
    assert 7 in ids(roster, "02/01/1980")
    assert ids(roster, "KD-0000007") == [7]
    assert 7 in ids(roster, "(305) 555-0142")
    assert 7 in ids(roster, "0142")
    assert ids(roster, "3055550142") == [7]


def test_state_status_filters_and_sorts(roster) -> None:
    nj_paused = ids(roster, states=frozenset({"NJ"}), statuses=frozenset({"paused"}))
    assert 7 in nj_paused
    with roster.db.session() as s:
        for patient_id in nj_paused:
            p = s.get(Patient, patient_id)
            assert (p.state, p.status) == ("NJ", "paused")
    with roster.db.session() as s:
        by_dob = rq.fetch_roster_page(s, rq.RosterFilter(), sort="dob", ascending=False, limit=500)
        assert [r.dob for r in by_dob] == sorted((r.dob for r in by_dob), reverse=True)
        by_status = rq.fetch_roster_page(s, rq.RosterFilter(), sort="status", limit=500)
        order = [("screening", "active", "paused", "discharged").index(r.status) for r in by_status]
        assert order == sorted(order)
        by_mrn = rq.fetch_roster_page(s, rq.RosterFilter("a"), sort="mrn", limit=500)
        assert [r.mrn for r in by_mrn] == sorted(r.mrn for r in by_mrn)


def test_pages_do_not_overlap_or_skip(roster) -> None:
    with roster.db.session() as s:
        seen = []
        for offset in range(0, 300, 64):
            seen += [
                r.patient_id
                for r in rq.fetch_roster_page(
                    s, rq.RosterFilter(), sort="state", offset=offset, limit=64
                )
            ]
    assert sorted(seen) == list(range(1, 301))


def test_registered_column_and_filter(roster) -> None:
    rq.register_column(rq.RosterColumn("even", "Even", lambda: Patient.id % 2 == 0))
    rq.register_filter(rq.RosterFilterOption("low_id", "Low id", lambda: Patient.id < 10))
    try:
        with roster.db.session() as s:
            rows = rq.fetch_roster_page(
                s, rq.RosterFilter(flags=frozenset({"low_id"})), sort="even", limit=100
            )
        assert sorted(r.patient_id for r in rows) == list(range(1, 10))
        assert all(bool(r.extras["even"]) == (r.patient_id % 2 == 0) for r in rows)
        assert [bool(r.extras["even"]) for r in rows] == sorted(
            bool(r.extras["even"]) for r in rows
        )
    finally:
        rq._COLUMNS.pop("even")
        rq._FILTERS.pop("low_id")
    with pytest.raises(ValueError):
        rq.register_column(rq.RosterColumn("mrn", "MRN", lambda: literal(1)))


def test_index_rebuilt_when_triggers_went_missing(roster) -> None:
    from sqlalchemy import text

    with roster.db.session() as s:
        rq.ensure_search_index(s)
        s.execute(text("DROP TRIGGER patients_search_au"))
        s.execute(update(Patient).where(Patient.id == 7).values(first_name_folded="quintessa"))
    with roster.db.session() as s:
        assert rq.ensure_search_index(s) is True
    assert ids(roster, "quintessa") == [7]

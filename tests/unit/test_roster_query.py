"""Roster search, filters, sort and paging in SQL, on a real encrypted database."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import delete, literal, select, update

from ketadesk.models.patients import Patient
from ketadesk.storage.demo.demo_data import populate_demo_patients
from ketadesk.storage.roster import roster_query as rq


def _with_patients(practice):
    with practice.db.session() as s:
        populate_demo_patients(
            s, 300, entered_by=practice.physician.user_name, today=date(2026, 3, 15)
        )
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


@pytest.fixture
def roster(practice_on):
    """300 demo patients and patient 7 to find, on a practice file and on a practice server."""
    return _with_patients(practice_on)


@pytest.fixture
def file_roster(practice):
    """The same on a practice file only (its FTS5 indexes and SQLite's locks)."""
    return _with_patients(practice)


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


def test_index_rebuilt_when_triggers_went_missing(file_roster) -> None:
    from sqlalchemy import text

    roster = file_roster
    with roster.db.session() as s:
        rq.ensure_search_index(s)
        s.execute(text("DROP TRIGGER patients_search_au2"))
        s.execute(update(Patient).where(Patient.id == 7).values(first_name_folded="quintessa"))
    rq.forget_index_checks()  # as a new process (or a new unlock) would
    with roster.db.session() as s:
        assert rq.ensure_search_index(s) is True
    assert ids(roster, "quintessa") == [7]


# --------------------------------------------------------------------------- clinical columns


@pytest.fixture(scope="module")
def clinical_columns():
    from ketadesk.storage.roster import roster_columns as rc

    rc.install_roster_columns()
    return rc


@pytest.fixture
def clinical(practice_on, clinical_columns):
    from ketadesk.storage.demo import demo_outcomes, demo_protocols, demo_reviews

    practice = practice_on
    with practice.db.session() as s:
        populate_demo_patients(s, 80, entered_by=practice.physician.user_name)
    demo_reviews.populate(practice.db, practice.physician)
    demo_protocols.populate(practice.db, practice.physician)
    demo_outcomes.populate(practice.db, practice.physician)
    return practice


def _all_rows(practice, sort="name", ascending=True, **kw):
    with practice.db.session() as s:
        return rq.fetch_roster_page(
            s, rq.RosterFilter(**kw), sort=sort, ascending=ascending, limit=10_000
        )


def _today():
    from datetime import UTC, datetime

    return datetime.now(UTC).astimezone().date()


def test_clinical_columns_agree_with_the_feature_services(clinical, clinical_columns) -> None:
    from ketadesk.storage.outcomes.monitoring_plans import (
        due_by_patient,
    )
    from ketadesk.storage.outcomes.safety_alerts import (
        open_safety_alerts,
    )
    from ketadesk.storage.protocols.protocol_versions import (
        patient_protocols,
    )
    from ketadesk.storage.reviews.interaction_reviews import review_states_for

    rc = clinical_columns
    rows = _all_rows(clinical)
    assert len(rows) == 80
    ids_ = [r.patient_id for r in rows]
    with clinical.db.session() as s:
        reviews = review_states_for(s, ids_)
        due = due_by_patient(s, ids_, _today())
        alerts = open_safety_alerts(s)
        protocols = {pid: patient_protocols(s, pid) for pid in ids_}
    for row in rows:
        assert row.extras[rc.REVIEW_STATUS] == reviews[row.patient_id]
        status = due.get(row.patient_id)
        assert row.extras[rc.NEXT_CHECKIN_DUE] == (status.next_checkin_due if status else None)
        if status is not None:
            assert bool(row.extras[rc.OVERDUE_DAYS]) == status.is_overdue
        assert bool(row.extras[rc.SAFETY_ALERT]) == (row.patient_id in alerts)
        active = [p for p in protocols[row.patient_id] if p.is_active]
        if active and any(p.latest_signed is not None for p in active):
            expected = "signed"
        elif active:
            expected = "draft"
        elif protocols[row.patient_id]:
            expected = "discontinued"
        else:
            expected = "none"
        assert row.extras[rc.PROTOCOL_STATUS] == expected
    # The demo data has something in every interesting bucket.
    assert {r.extras[rc.REVIEW_STATUS] for r in rows} >= {"none", "current"}
    assert any(r.extras[rc.OVERDUE_DAYS] for r in rows)
    assert {r.extras[rc.PROTOCOL_STATUS] for r in rows} >= {"none", "signed"}


def test_clinical_filters_match_their_columns(clinical, clinical_columns) -> None:
    rc = clinical_columns
    rows = _all_rows(clinical)
    overdue = _all_rows(clinical, flags=frozenset({rc.CHECKIN_OVERDUE}))
    assert overdue
    assert {r.patient_id for r in overdue} == {
        r.patient_id for r in rows if r.extras[rc.OVERDUE_DAYS]
    }
    stale = _all_rows(clinical, flags=frozenset({rc.REVIEW_STALE}))
    assert {r.patient_id for r in stale} == {
        r.patient_id for r in rows if r.extras[rc.REVIEW_STATUS] == "stale"
    }
    alerts = _all_rows(clinical, flags=frozenset({rc.SAFETY_ALERT_OPEN}))
    assert {r.patient_id for r in alerts} == {
        r.patient_id for r in rows if r.extras[rc.SAFETY_ALERT]
    }
    with clinical.db.session() as s:
        both = rq.RosterFilter(flags=frozenset({rc.CHECKIN_OVERDUE, rc.SAFETY_ALERT_OPEN}))
        assert rq.count_roster(s, both) == len(
            [r for r in rows if r.extras[rc.OVERDUE_DAYS] and r.extras[rc.SAFETY_ALERT]]
        )


def test_sorting_by_clinical_columns_is_done_in_sql_and_pages_cleanly(
    clinical, clinical_columns
) -> None:
    rc = clinical_columns
    rank = {"stale": 0, "none": 1, "current": 2}
    rows = _all_rows(clinical, sort=rc.REVIEW_STATUS)
    assert [rank[r.extras[rc.REVIEW_STATUS]] for r in rows] == sorted(
        rank[r.extras[rc.REVIEW_STATUS]] for r in rows
    )
    rows = _all_rows(clinical, sort=rc.NEXT_CHECKIN_DUE)
    dues = [r.extras[rc.NEXT_CHECKIN_DUE] for r in rows]
    monitored = [d for d in dues if d is not None]
    assert monitored == sorted(monitored)
    assert dues[: len(monitored)] == monitored  # not monitored come last
    rows = _all_rows(clinical, sort=rc.SAFETY_ALERT)
    flags = [r.extras[rc.SAFETY_ALERT] for r in rows]
    assert flags == sorted(flags, reverse=True)
    for key in (rc.PROTOCOL_STATUS, rc.NEXT_CHECKIN_DUE, rc.REVIEW_STATUS):
        seen: list[int] = []
        with clinical.db.session() as s:
            for offset in range(0, 80, 7):
                page = rq.fetch_roster_page(s, rq.RosterFilter(), sort=key, offset=offset, limit=7)
                seen.extend(r.patient_id for r in page)
        assert sorted(seen) == sorted(r.patient_id for r in _all_rows(clinical))


def test_a_chart_change_makes_the_review_stale_without_a_manual_refresh(
    clinical, clinical_columns
) -> None:
    from ketadesk.storage.patients.patient_medications import (
        add_medication,
    )

    rc = clinical_columns
    current = [r for r in _all_rows(clinical) if r.extras[rc.REVIEW_STATUS] == "current"]
    assert current
    target = current[0].patient_id
    with clinical.db.session() as s:
        add_medication(s, clinical.physician, target, "Lorazepam 1 mg at bedtime")
    rows = {r.patient_id: r for r in _all_rows(clinical)}
    assert rows[target].extras[rc.REVIEW_STATUS] == "stale"
    stale = _all_rows(clinical, flags=frozenset({rc.REVIEW_STALE}))
    assert target in {r.patient_id for r in stale}


def test_external_id_is_searchable_by_prefix(roster) -> None:
    with roster.db.session() as s:
        s.execute(update(Patient).where(Patient.id == 11).values(external_id="ACME-00417"))
    assert ids(roster, "ACME-00417") == [11]
    assert ids(roster, "acme-004") == [11]
    assert 11 not in ids(roster, "ACME-005")


@pytest.fixture
def findable(roster):
    """Patient 7 (Zoë Ñúñez-Łukasiewicz, 02/01/1980, (305) 555-0142) also gets an MRN whose
    last digits are unique, and a birthday typed as 11/29/1990 elsewhere."""
    with roster.db.session() as s:
        s.execute(update(Patient).where(Patient.id == 7).values(mrn="KD-00098368"))
        s.execute(update(Patient).where(Patient.id == 9).values(dob=date(1990, 11, 29)))
    return roster


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("98368", {7}),  # MRN by its last digits
        ("KD98368", {7}),  # prefix without the dash and the zeros
        ("kd-98368", {7}),
        ("KD-0009836", {7}),  # a typed prefix still works
        ("KD-00098368", {7}),
        ("11291990", {9}),  # DOB as eight digits
        ("11/29/90", {9}),
        ("11-29-1990", {9}),
        ("2/1/80", {7}),
        ("3055550142", {7}),  # phone digits
        ("(305) 555-0142", {7}),
        ("zoe nunez", {7}),  # names with diacritics
        ("ŁUKASIEWICZ", {7}),
    ],
)
def test_search_finds_by_every_form(findable, text, expected) -> None:
    assert set(ids(findable, text)) >= expected


def test_short_digits_search_mrn_endings_only(findable) -> None:
    found = ids(findable, "68")
    assert 7 in found
    with findable.db.session() as s:
        mrns = {pid: mrn for pid, mrn in s.execute(select(Patient.id, Patient.mrn))}
    assert all(mrns[i].endswith("68") for i in found)


def test_broad_search_counts_up_to_the_cap(findable) -> None:
    with findable.db.session() as s:
        result = rq.query_roster(s, rq.RosterFilter(search_text="555"), limit=20, count_cap=50)
        assert result.total_is_lower_bound and result.total == 50
        assert len(result.rows) == 20
        exact = rq.query_roster(s, rq.RosterFilter(search_text="555"), limit=20, count_cap=None)
        assert exact.total == 300 and not exact.total_is_lower_bound


def test_roster_reads_take_no_write_lock(roster) -> None:
    """A search keystroke reads in a deferred transaction: a save meanwhile is not refused."""
    with roster.db.session() as s:
        rq.prepare_roster(s)  # what the roster model does once, in a session that may write
    with roster.db.read_session() as reading:
        rq.fetch_roster_page(reading, rq.RosterFilter(search_text="zoe"), limit=10)
        with roster.db.session() as writing:
            writing.execute(update(Patient).where(Patient.id == 7).values(county="Ocean"))
    with roster.db.session() as s:
        assert s.get(Patient, 7).county == "Ocean"


def test_a_read_only_session_refuses_to_build_anything(practice) -> None:
    from ketadesk.models.roster_status import RosterStatusMeta
    from ketadesk.storage.roster.roster_status import forget_checked_engines

    with practice.db.session() as s:
        s.execute(delete(RosterStatusMeta))
    forget_checked_engines()
    with practice.db.read_session() as s, pytest.raises(RuntimeError, match="prepare the roster"):
        rq.prepare_roster(s)

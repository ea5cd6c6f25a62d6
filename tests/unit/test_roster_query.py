"""Roster search, filters, sort and paging in SQL, on a real encrypted database."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import literal, update

from ketadesk.models.patients import Patient
from ketadesk.storage.demo.demo_data import populate_demo_patients
from ketadesk.storage.roster import roster_query as rq
from ketadesk.storage.roster.roster_status import (
    compute_patient_statuses,
    deferred_status_computation,
    prepare_roster_status,
    status_pending,
    warm_roster_status,
)


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


# --------------------------------------------------------------------------- clinical columns


@pytest.fixture(scope="module")
def clinical_columns():
    from ketadesk.storage.roster import roster_columns as rc

    rc.install_roster_columns()
    return rc


@pytest.fixture
def clinical(practice, clinical_columns):
    from ketadesk.storage.demo import demo_outcomes, demo_protocols, demo_reviews

    with practice.db.session() as s:
        populate_demo_patients(s, 80, entered_by="drquill")
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
    from ketadesk.storage.outcomes.outcomes import (
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
        assert row.extras[rc.NEXT_CHECKIN_DUE] == (status.next_due if status else None)
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
        assert prepare_roster_status(s) is False  # nothing changed: no recomputation
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


def test_deferred_queries_leave_statuses_pending_until_warmed(practice, clinical_columns) -> None:
    from ketadesk.storage.demo import demo_outcomes, demo_reviews

    rc = clinical_columns
    with practice.db.session() as s:
        populate_demo_patients(s, 40, entered_by="drquill")
    demo_reviews.populate(practice.db, practice.physician)
    demo_outcomes.populate(practice.db, practice.physician)
    with practice.db.session() as s, deferred_status_computation():
        rows = rq.fetch_roster_page(s, rq.RosterFilter(), limit=100)
        assert status_pending(s)
    assert all(r.extras[rc.STATUS_PENDING] == 1 for r in rows)
    assert all(r.extras[rc.REVIEW_STATUS] is None for r in rows)  # not "none": unknown yet
    assert all(r.extras[rc.NEXT_CHECKIN_DUE] is None for r in rows)
    calls: list[int] = []

    def keep_going() -> bool:
        calls.append(1)
        return True

    assert warm_roster_status(practice.db.session, chunk=15, should_continue=keep_going)
    assert len(calls) == 3  # 40 patients in chunks of 15
    with practice.db.session() as s, deferred_status_computation():
        warmed = rq.fetch_roster_page(s, rq.RosterFilter(), limit=100)
        assert not status_pending(s)
    with practice.db.session() as s:
        direct = compute_patient_statuses(s, _today())
    for row in warmed:
        expected = direct.get(row.patient_id)
        assert row.extras[rc.STATUS_PENDING] == 0
        assert row.extras[rc.REVIEW_STATUS] == ((expected and expected.review_state) or "none")
        assert row.extras[rc.NEXT_CHECKIN_DUE] == (expected.next_due if expected else None)
    assert any(r.extras[rc.NEXT_CHECKIN_DUE] for r in warmed)


def test_warming_can_be_stopped(practice, clinical_columns) -> None:
    with practice.db.session() as s:
        populate_demo_patients(s, 30, entered_by="drquill")
    assert (
        warm_roster_status(practice.db.session, chunk=10, should_continue=lambda: False) is False
    )
    with practice.db.session() as s, deferred_status_computation():
        rq.fetch_roster_page(s, rq.RosterFilter(), limit=10)
        assert status_pending(s)

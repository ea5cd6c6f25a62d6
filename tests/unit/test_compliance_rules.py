"""The prescribing rules as data and the checklist built on them (no database): every rule's
boundary, with synthetic facts."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from ketadesk.core.compliance_rules import (
    FL_PDMP,
    NJ_PMP,
    NjKetamineLookup,
    add_months,
    current_quarter_start,
    last_fill_day,
    load_compliance_rules,
    pdmp_requirement,
    rules_from_data,
    telemedicine_flexibilities_end,
)
from ketadesk.core.dea_number import dea_check_digit, dea_number_problem, is_valid_dea_number
from ketadesk.core.prescription_checks import (
    CheckCode,
    CheckLevel,
    ChecklistInputs,
    ConsentFact,
    CredentialFact,
    CredentialKind,
    PdmpFact,
    TelemedicineBasis,
    TelemedicineFact,
    blocking_reasons,
    prescription_checklist,
)
from ketadesk.resources import load_resource_json

RULES = load_compliance_rules()
ISSUE_ON = date(2026, 6, 15)
ISSUE_AT = datetime(2026, 6, 15, 15, 0, tzinfo=UTC)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def credentials(state: str, expires_on: date) -> tuple[CredentialFact, ...]:
    return (
        CredentialFact(CredentialKind.STATE_LICENCE, state, "ME123456", expires_on),
        CredentialFact(CredentialKind.DEA_REGISTRATION, state, "AD1234563", expires_on),
    )


def inputs(**changes: object) -> ChecklistInputs:
    """Facts for an FL patient of 42 with everything in order on 15 June 2026."""
    base = ChecklistInputs(
        patient_state="FL",
        patient_dob=date(1984, 3, 9),
        issue_at=ISSUE_AT,
        issue_on=ISSUE_ON,
        quantity=30,
        refills=2,
        remote=False,
        protocol_signed=True,
        review_state="current",
        credentials=credentials("FL", date(2028, 1, 31)),
        pdmp_checks=(PdmpFact("FL", ISSUE_AT - timedelta(hours=2), True),),
        previous_issued_at=(),
        consent=ConsentFact(1, date(2026, 1, 10), True),
        consent_valid_months=12,
        telemedicine=(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def line(result_inputs: ChecklistInputs, code: CheckCode, rules=RULES):  # type: ignore[no-untyped-def]
    found = [r for r in prescription_checklist(result_inputs, rules) if r.code is code]
    assert len(found) == 1
    return found[0]


# --------------------------------------------------------------------------- the data


def test_every_rule_has_a_source_dates_and_own_words() -> None:
    data = load_resource_json("compliance", "rules.json")
    assert {r.id for r in RULES.rules} == {item["id"] for item in data["rules"]}
    for rule in RULES.rules:
        assert rule.source and rule.source_url.startswith("http")
        assert rule.summary and rule.verified_on <= date(2026, 12, 31)
        assert rule.citation.startswith(rule.source)
    assert telemedicine_flexibilities_end(RULES) == date(2026, 12, 31)
    assert RULES.rule(FL_PDMP).parameters["minimum_age_years"] == 16


def test_a_changed_rule_is_a_data_update() -> None:
    """Extending the telemedicine flexibilities (a fifth extension) is a change of one date."""
    data = copy.deepcopy(load_resource_json("compliance", "rules.json"))
    for item in data["rules"]:
        if item["id"] == "dea_telemedicine_flexibilities_2026":
            item["effective_to"] = "2027-12-31"
    extended = rules_from_data(data)
    after = date(2027, 1, 4)
    facts = inputs(remote=True, issue_on=after, issue_at=at(after),
                   telemedicine=(TelemedicineFact(TelemedicineBasis.DEA_FLEXIBILITIES),),
                   pdmp_checks=(PdmpFact("FL", at(after, 9), True),))
    assert line(facts, CheckCode.TELEMEDICINE).level is CheckLevel.ERROR
    assert line(facts, CheckCode.TELEMEDICINE, extended).level is CheckLevel.OK


# --------------------------------------------------------------------------- DEA numbers


def test_dea_check_digit() -> None:
    assert dea_check_digit("123456") == 3  # (1+3+5) + 2*(2+4+6) = 33
    assert is_valid_dea_number("AD1234563")
    assert is_valid_dea_number("ad 123-4563")
    assert not is_valid_dea_number("AD1234564")
    assert "check digit" in (dea_number_problem("AD1234564") or "")
    assert "two letters" in (dea_number_problem("A12345678") or "")
    assert "two letters" in (dea_number_problem("AD123456") or "")


# --------------------------------------------------------------------------- Florida PDMP


def test_florida_lookup_required_from_16() -> None:
    sixteen_today = date(ISSUE_ON.year - 16, ISSUE_ON.month, ISSUE_ON.day)
    fifteen = sixteen_today + timedelta(days=1)
    no_check = {"pdmp_checks": ()}
    assert line(inputs(patient_dob=fifteen, **no_check), CheckCode.PDMP).level is CheckLevel.OK
    result = line(inputs(patient_dob=sixteen_today, **no_check), CheckCode.PDMP)
    assert result.level is CheckLevel.ERROR
    assert result.rule_id == FL_PDMP and "893.055" in result.source


def test_florida_needs_a_lookup_after_the_previous_prescription() -> None:
    previous = ISSUE_AT - timedelta(days=30)
    old = PdmpFact("FL", previous - timedelta(hours=1), True)
    fresh = PdmpFact("FL", previous + timedelta(days=29), True)
    assert line(inputs(previous_issued_at=(previous,), pdmp_checks=(old,)),
                CheckCode.PDMP).level is CheckLevel.ERROR
    assert line(inputs(previous_issued_at=(previous,), pdmp_checks=(old, fresh)),
                CheckCode.PDMP).level is CheckLevel.OK
    # a look-up after the issue time, or in the other state's system, does not count
    late = PdmpFact("FL", ISSUE_AT + timedelta(minutes=1), True)
    other = PdmpFact("NJ", ISSUE_AT - timedelta(hours=1), True)
    assert line(inputs(pdmp_checks=(late, other)), CheckCode.PDMP).level is CheckLevel.ERROR


def test_a_recorded_reason_is_a_warning_to_acknowledge() -> None:
    facts = inputs(pdmp_checks=(PdmpFact("FL", ISSUE_AT - timedelta(hours=1), False),))
    result = line(facts, CheckCode.PDMP)
    assert result.level is CheckLevel.WARNING
    results = prescription_checklist(facts, RULES)
    assert blocking_reasons(results) and not blocking_reasons(results, ["pdmp"])


# --------------------------------------------------------------------------- New Jersey PMP


def nj(**changes: object) -> ChecklistInputs:
    base = {"patient_state": "NJ", "credentials": credentials("NJ", date(2028, 1, 31)),
            "pdmp_checks": ()}
    base.update(changes)
    return inputs(**base)


def test_new_jersey_rule_only_needs_a_lookup_on_reasonable_belief() -> None:
    rule_only = NjKetamineLookup.RULE_ONLY
    result = line(nj(nj_setting=rule_only), CheckCode.PDMP)
    assert result.level is CheckLevel.OK and result.rule_id == NJ_PMP
    believed = line(nj(nj_setting=rule_only, misuse_concern=True), CheckCode.PDMP)
    assert believed.level is CheckLevel.ERROR and "misuse" in believed.message


def test_new_jersey_first_time_then_quarterly() -> None:
    setting = NjKetamineLookup.FIRST_AND_QUARTERLY
    first_check = PdmpFact("NJ", at(date(2026, 1, 5), 9), True)
    # first time: no previous prescription, a look-up before it is needed
    assert line(nj(nj_setting=setting), CheckCode.PDMP).level is CheckLevel.ERROR
    assert line(nj(nj_setting=setting, pdmp_checks=(first_check,)),
                CheckCode.PDMP).level is CheckLevel.OK
    # quarterly: counted from the first prescription (5 January): quarters start 5 April,
    # 5 July ...; on 4 July the April look-up still counts, on 5 July it does not
    first_rx = at(date(2026, 1, 5), 10)
    april = PdmpFact("NJ", at(date(2026, 4, 6)), True)
    for day, expected in ((date(2026, 7, 4), CheckLevel.OK), (date(2026, 7, 5), CheckLevel.ERROR)):
        facts = nj(nj_setting=setting, previous_issued_at=(first_rx,),
                   pdmp_checks=(first_check, april), issue_on=day, issue_at=at(day, 15))
        assert line(facts, CheckCode.PDMP).level is expected, day
    assert current_quarter_start(date(2026, 1, 5), date(2026, 7, 4)) == date(2026, 4, 5)
    assert current_quarter_start(date(2026, 1, 5), date(2026, 7, 5)) == date(2026, 7, 5)
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)


def test_new_jersey_every_prescription_setting() -> None:
    previous = ISSUE_AT - timedelta(days=10)
    before = PdmpFact("NJ", previous - timedelta(hours=1), True)
    facts = nj(nj_setting=NjKetamineLookup.EVERY_PRESCRIPTION, previous_issued_at=(previous,),
               pdmp_checks=(before,))
    assert line(facts, CheckCode.PDMP).level is CheckLevel.ERROR
    need = pdmp_requirement(RULES, state="NJ", age_years=40, issue_at=ISSUE_AT,
                            issue_on=ISSUE_ON, previous_issued_at=(previous,),
                            nj_setting=NjKetamineLookup.EVERY_PRESCRIPTION)
    assert need.required and need.counts_since == previous


# --------------------------------------------------------------------------- refills


def test_five_refills_pass_six_do_not() -> None:
    assert line(inputs(refills=5), CheckCode.REFILLS).level is CheckLevel.OK
    six = line(inputs(refills=6), CheckCode.REFILLS)
    assert six.level is CheckLevel.ERROR and "1306.22" in six.source
    assert line(inputs(refills=-1), CheckCode.REFILLS).level is CheckLevel.ERROR


def test_the_fill_window_ends_on_day_180() -> None:
    issued = date(2026, 1, 1)
    assert last_fill_day(RULES, issued) == issued + timedelta(days=180)


# --------------------------------------------------------------------------- credentials


@pytest.mark.parametrize(
    ("expires_on", "level"),
    [
        (ISSUE_ON - timedelta(days=1), CheckLevel.ERROR),
        (ISSUE_ON, CheckLevel.WARNING),
        (ISSUE_ON + timedelta(days=60), CheckLevel.WARNING),
        (ISSUE_ON + timedelta(days=61), CheckLevel.OK),
    ],
)
def test_licence_and_registration_expiry(expires_on: date, level: CheckLevel) -> None:
    facts = inputs(credentials=credentials("FL", expires_on))
    assert line(facts, CheckCode.STATE_LICENCE).level is level
    assert line(facts, CheckCode.DEA_REGISTRATION).level is level


def test_credentials_must_be_for_the_patients_state() -> None:
    facts = inputs(credentials=credentials("NJ", date(2030, 1, 1)))
    assert "no FL medical licence" in line(facts, CheckCode.STATE_LICENCE).message
    assert line(facts, CheckCode.DEA_REGISTRATION).level is CheckLevel.ERROR


# --------------------------------------------------------------------------- consent


def test_consent_missing_expired_old_version_and_expiring() -> None:
    assert line(inputs(consent=None), CheckCode.CONSENT).level is CheckLevel.ERROR
    # signed 15 June 2025 with a 12-month period: expired on 15 June 2026
    expired = line(inputs(consent=ConsentFact(1, date(2025, 6, 15), True)), CheckCode.CONSENT)
    assert expired.level is CheckLevel.ERROR and "2026-06-15" in expired.message
    day_before = line(inputs(consent=ConsentFact(1, date(2025, 6, 16), True)), CheckCode.CONSENT)
    assert day_before.level is CheckLevel.WARNING  # expires tomorrow
    old = line(inputs(consent=ConsentFact(1, date(2026, 3, 1), False)), CheckCode.CONSENT)
    assert old.level is CheckLevel.WARNING and "newer version" in old.message


# --------------------------------------------------------------------------- telemedicine


def test_remote_prescription_needs_a_telemedicine_record() -> None:
    assert line(inputs(remote=True), CheckCode.TELEMEDICINE).level is CheckLevel.ERROR
    evaluated = TelemedicineFact(TelemedicineBasis.IN_PERSON_EVALUATION, date(2026, 2, 1))
    assert line(inputs(remote=True, telemedicine=(evaluated,)),
                CheckCode.TELEMEDICINE).level is CheckLevel.OK
    assert line(inputs(remote=False), CheckCode.TELEMEDICINE).level is CheckLevel.OK


@pytest.mark.parametrize(
    ("day", "level"),
    [
        (date(2026, 10, 31), CheckLevel.OK),  # 61 days before the end
        (date(2026, 12, 31), CheckLevel.WARNING),  # the last day, with a warning
        (date(2027, 1, 1), CheckLevel.ERROR),  # the day after
    ],
)
def test_telemedicine_flexibilities_end_date(day: date, level: CheckLevel) -> None:
    facts = inputs(remote=True, issue_on=day, issue_at=at(day, 15),
                   telemedicine=(TelemedicineFact(TelemedicineBasis.DEA_FLEXIBILITIES),),
                   pdmp_checks=(PdmpFact("FL", at(day, 9), True),))
    result = line(facts, CheckCode.TELEMEDICINE)
    assert result.level is level
    if level is CheckLevel.ERROR:
        assert "ended on 2026-12-31" in result.message


def test_registration_or_exception_with_its_own_end() -> None:
    day = date(2027, 2, 1)
    for ends, level in ((day, CheckLevel.OK), (day - timedelta(days=1), CheckLevel.ERROR)):
        fact = TelemedicineFact(TelemedicineBasis.REGISTRATION_OR_EXCEPTION, ends_on=ends)
        facts = inputs(remote=True, issue_on=day, issue_at=at(day), telemedicine=(fact,),
                       pdmp_checks=(PdmpFact("FL", at(day, 9), True),))
        assert line(facts, CheckCode.TELEMEDICINE).level is level


# --------------------------------------------------------------------------- the whole list


def test_every_failed_check_is_named() -> None:
    facts = inputs(protocol_signed=False, review_state="none", pdmp_checks=(), consent=None,
                   credentials=(), refills=6, quantity=0, remote=True)
    reasons = blocking_reasons(prescription_checklist(facts, RULES))
    named = {reason.split(":")[0] for reason in reasons}
    assert named == {str(code) for code in CheckCode}
    stale = blocking_reasons(prescription_checklist(inputs(review_state="stale"), RULES))
    assert stale == [
        "interaction_review (warning not acknowledged): The interaction review is out of date: "
        "the chart changed since it was signed."
    ]

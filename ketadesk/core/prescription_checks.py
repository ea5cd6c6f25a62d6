"""The checklist a physician sees before issuing a ketamine prescription.

Each line is one rule with its source: ``error`` lines block issuing, ``warning`` lines must be
acknowledged (the acknowledgement is audited), ``ok`` lines say what was found. Everything the
checklist needs is passed in as plain facts (no database); the storage layer gathers them.
Dates are calendar days, times are aware UTC datetimes, consent periods are in months.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from ketadesk.core.compliance_rules import (
    CONSENT,
    CREDENTIALS,
    REFILLS,
    TELEMEDICINE_FLEXIBILITIES,
    ComplianceRules,
    NjKetamineLookup,
    add_months,
    credential_warning_days,
    max_refills,
    pdmp_requirement,
)
from ketadesk.core.demographics import age_in_years


class CheckLevel(StrEnum):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


class CheckCode(StrEnum):
    PROTOCOL = "protocol_signed"
    REVIEW = "interaction_review"
    PDMP = "pdmp"
    CONSENT = "consent"
    STATE_LICENCE = "state_licence"
    DEA_REGISTRATION = "dea_registration"
    REFILLS = "refills"
    QUANTITY = "quantity"
    TELEMEDICINE = "telemedicine"


class CredentialKind(StrEnum):
    STATE_LICENCE = "state_licence"
    DEA_REGISTRATION = "dea_registration"


CREDENTIAL_LABELS = {
    CredentialKind.STATE_LICENCE: "medical licence",
    CredentialKind.DEA_REGISTRATION: "DEA registration",
}


class TelemedicineBasis(StrEnum):
    IN_PERSON_EVALUATION = "in_person_evaluation"
    DEA_FLEXIBILITIES = "dea_flexibilities"
    REGISTRATION_OR_EXCEPTION = "registration_or_exception"


TELEMEDICINE_LABELS = {
    TelemedicineBasis.IN_PERSON_EVALUATION: "in-person medical evaluation",
    TelemedicineBasis.DEA_FLEXIBILITIES: "DEA telemedicine flexibilities",
    TelemedicineBasis.REGISTRATION_OR_EXCEPTION: "telemedicine registration or exception",
}


@dataclass(frozen=True)
class CheckResult:
    """One checklist line: what was found, in words, and the rule it comes from."""

    code: CheckCode
    level: CheckLevel
    message: str
    rule_id: str | None = None
    source: str = ""


@dataclass(frozen=True)
class CredentialFact:
    kind: CredentialKind
    state: str
    number: str
    expires_on: date


@dataclass(frozen=True)
class PdmpFact:
    """A recorded look-up: ``consulted`` is False when a not-checked reason was recorded."""

    state: str
    checked_at: datetime
    consulted: bool


@dataclass(frozen=True)
class ConsentFact:
    template_version: int
    signed_on: date
    is_current_version: bool


@dataclass(frozen=True)
class TelemedicineFact:
    basis: TelemedicineBasis
    in_person_evaluation_on: date | None = None
    ends_on: date | None = None  # for a registration or exception


@dataclass(frozen=True)
class ChecklistInputs:
    """The facts the checklist needs. ``review_state`` is "current", "stale" or "none"."""

    patient_state: str
    patient_dob: date
    issue_at: datetime
    issue_on: date  # the practice's calendar day of ``issue_at``
    quantity: float
    refills: int
    remote: bool
    protocol_signed: bool
    review_state: str
    credentials: Sequence[CredentialFact]
    pdmp_checks: Sequence[PdmpFact]
    previous_issued_at: Sequence[datetime]
    consent: ConsentFact | None
    consent_valid_months: int
    telemedicine: Sequence[TelemedicineFact]
    nj_setting: NjKetamineLookup = NjKetamineLookup.FIRST_AND_QUARTERLY
    misuse_concern: bool = False


def prescription_checklist(
    inputs: ChecklistInputs, rules: ComplianceRules
) -> tuple[CheckResult, ...]:
    """Every checklist line, in the order the physician reads them."""
    on = inputs.issue_on
    return (
        _protocol_check(inputs),
        _review_check(inputs),
        _pdmp_check(inputs, rules),
        _consent_check(inputs, rules, on),
        _credential_check(inputs, rules, CredentialKind.STATE_LICENCE, on),
        _credential_check(inputs, rules, CredentialKind.DEA_REGISTRATION, on),
        _refills_check(inputs, rules),
        _quantity_check(inputs),
        _telemedicine_check(inputs, rules, on),
    )


def errors_of(results: Iterable[CheckResult]) -> tuple[CheckResult, ...]:
    return tuple(r for r in results if r.level is CheckLevel.ERROR)


def warnings_of(results: Iterable[CheckResult]) -> tuple[CheckResult, ...]:
    return tuple(r for r in results if r.level is CheckLevel.WARNING)


def blocking_checks(
    results: Sequence[CheckResult], acknowledged: Iterable[str] = ()
) -> list[CheckResult]:
    """Every failed check: each error, then each warning not acknowledged."""
    ticked = set(acknowledged)
    return [*errors_of(results), *(r for r in warnings_of(results) if r.code not in ticked)]


def blocking_reasons(
    results: Sequence[CheckResult], acknowledged: Iterable[str] = ()
) -> list[str]:
    """Sentences naming every failed check: each error, and each warning not acknowledged."""
    return [
        f"{r.code}: {r.message}"
        if r.level is CheckLevel.ERROR
        else f"{r.code} (warning not acknowledged): {r.message}"
        for r in blocking_checks(results, acknowledged)
    ]


# --------------------------------------------------------------------------- the checks


def _protocol_check(inputs: ChecklistInputs) -> CheckResult:
    if inputs.protocol_signed:
        return CheckResult(CheckCode.PROTOCOL, CheckLevel.OK, "The protocol is signed.")
    return CheckResult(
        CheckCode.PROTOCOL, CheckLevel.ERROR,
        "The patient has no signed protocol: a prescription follows a signed protocol version.",
    )


def _review_check(inputs: ChecklistInputs) -> CheckResult:
    if inputs.review_state == "current":
        return CheckResult(CheckCode.REVIEW, CheckLevel.OK, "The interaction review is current.")
    if inputs.review_state == "stale":
        return CheckResult(
            CheckCode.REVIEW, CheckLevel.WARNING,
            "The interaction review is out of date: the chart changed since it was signed.",
        )
    return CheckResult(
        CheckCode.REVIEW, CheckLevel.ERROR, "The patient has no signed interaction review."
    )


def _pdmp_check(inputs: ChecklistInputs, rules: ComplianceRules) -> CheckResult:
    on = inputs.issue_on
    need = pdmp_requirement(
        rules,
        state=inputs.patient_state,
        age_years=age_in_years(inputs.patient_dob, on),
        issue_at=inputs.issue_at,
        issue_on=on,
        previous_issued_at=inputs.previous_issued_at,
        nj_setting=inputs.nj_setting,
        misuse_concern=inputs.misuse_concern,
    )
    rule = need.rule
    if not need.required:
        return CheckResult(CheckCode.PDMP, CheckLevel.OK, need.reason, rule.id, rule.citation)
    system = str(rule.parameters.get("system_name", "PDMP"))
    counting = [
        c for c in inputs.pdmp_checks
        if c.state == need.state
        and c.checked_at <= inputs.issue_at
        and (need.counts_since is None or c.checked_at >= need.counts_since)
    ]
    counting.sort(key=lambda c: c.checked_at)
    consulted = [c for c in counting if c.consulted]
    if consulted:
        when = consulted[-1].checked_at.date().isoformat()
        return CheckResult(
            CheckCode.PDMP, CheckLevel.OK, f"{system} consulted on {when}. {need.reason}",
            rule.id, rule.citation,
        )
    if counting:
        when = counting[-1].checked_at.date().isoformat()
        return CheckResult(
            CheckCode.PDMP, CheckLevel.WARNING,
            f"{system} could not be consulted ({when}); the reason is recorded. {need.reason}",
            rule.id, rule.citation,
        )
    return CheckResult(
        CheckCode.PDMP, CheckLevel.ERROR,
        f"No {system} look-up is recorded for this prescription. {need.reason}",
        rule.id, rule.citation,
    )


def consent_expires_on(signed_on: date, valid_months: int) -> date:
    """The first day a consent signed on ``signed_on`` is no longer valid."""
    return add_months(signed_on, valid_months)


#: Days before a consent expires that it is listed as expiring.
CONSENT_WARNING_DAYS = 30


def _consent_check(inputs: ChecklistInputs, rules: ComplianceRules, on: date) -> CheckResult:
    rule = rules.rule(CONSENT)
    consent = inputs.consent
    if consent is not None and consent.signed_on > on:
        consent = None  # signed after the day of issue: it does not cover this prescription
    if consent is None:
        return CheckResult(
            CheckCode.CONSENT, CheckLevel.ERROR, "No signed informed consent is on file.",
            rule.id, rule.citation,
        )
    expires = consent_expires_on(consent.signed_on, inputs.consent_valid_months)
    if on >= expires:
        return CheckResult(
            CheckCode.CONSENT, CheckLevel.ERROR,
            f"The informed consent signed on {consent.signed_on.isoformat()} expired on "
            f"{expires.isoformat()} (the practice renews consent every "
            f"{inputs.consent_valid_months} months).",
            rule.id, rule.citation,
        )
    if not consent.is_current_version:
        return CheckResult(
            CheckCode.CONSENT, CheckLevel.WARNING,
            f"The consent on file is version {consent.template_version}; a newer version of the "
            "consent exists, so the patient should consent again.",
            rule.id, rule.citation,
        )
    days = (expires - on).days
    if days <= CONSENT_WARNING_DAYS:
        return CheckResult(
            CheckCode.CONSENT, CheckLevel.WARNING,
            f"The informed consent expires on {expires.isoformat()} (in {days} days).",
            rule.id, rule.citation,
        )
    return CheckResult(
        CheckCode.CONSENT, CheckLevel.OK,
        f"Informed consent (version {consent.template_version}) signed on "
        f"{consent.signed_on.isoformat()}, valid until {expires.isoformat()}.",
        rule.id, rule.citation,
    )


def _credential_check(
    inputs: ChecklistInputs, rules: ComplianceRules, kind: CredentialKind, on: date
) -> CheckResult:
    rule = rules.rule(CREDENTIALS)
    code = (
        CheckCode.STATE_LICENCE
        if kind is CredentialKind.STATE_LICENCE
        else CheckCode.DEA_REGISTRATION
    )
    label = CREDENTIAL_LABELS[kind]
    state = inputs.patient_state
    held = [c for c in inputs.credentials if c.kind is kind and c.state == state]
    if not held:
        return CheckResult(
            code, CheckLevel.ERROR, f"The prescriber has no {state} {label} on file.",
            rule.id, rule.citation,
        )
    best = max(held, key=lambda c: c.expires_on)
    if on > best.expires_on:
        return CheckResult(
            code, CheckLevel.ERROR,
            f"The prescriber's {state} {label} {best.number} expired on "
            f"{best.expires_on.isoformat()}.",
            rule.id, rule.citation,
        )
    days = (best.expires_on - on).days
    if days <= credential_warning_days(rules):
        return CheckResult(
            code, CheckLevel.WARNING,
            f"The prescriber's {state} {label} {best.number} expires on "
            f"{best.expires_on.isoformat()} (in {days} days).",
            rule.id, rule.citation,
        )
    return CheckResult(
        code, CheckLevel.OK,
        f"{state} {label} {best.number}, valid until {best.expires_on.isoformat()}.",
        rule.id, rule.citation,
    )


def _refills_check(inputs: ChecklistInputs, rules: ComplianceRules) -> CheckResult:
    rule = rules.rule(REFILLS)
    limit = max_refills(rules)
    if inputs.refills < 0:
        return CheckResult(CheckCode.REFILLS, CheckLevel.ERROR,
                           "The number of refills cannot be negative.", rule.id, rule.citation)
    if inputs.refills > limit:
        return CheckResult(
            CheckCode.REFILLS, CheckLevel.ERROR,
            f"{inputs.refills} refills is more than the {limit} a Schedule III prescription may "
            "carry.",
            rule.id, rule.citation,
        )
    return CheckResult(
        CheckCode.REFILLS, CheckLevel.OK,
        f"{inputs.refills} refill{'s' if inputs.refills != 1 else ''} (at most {limit}, within "
        f"{rule.number('fill_window_days')} days of the issue date).",
        rule.id, rule.citation,
    )


def _quantity_check(inputs: ChecklistInputs) -> CheckResult:
    if inputs.quantity > 0:
        return CheckResult(CheckCode.QUANTITY, CheckLevel.OK, "A quantity is given.")
    return CheckResult(CheckCode.QUANTITY, CheckLevel.ERROR, "Enter a quantity above 0.")


def _telemedicine_check(inputs: ChecklistInputs, rules: ComplianceRules, on: date) -> CheckResult:
    rule = rules.rule(TELEMEDICINE_FLEXIBILITIES)
    if not inputs.remote:
        return CheckResult(
            CheckCode.TELEMEDICINE, CheckLevel.OK,
            "Prescribed after an in-person visit: no telemedicine record is needed.",
        )
    problems: list[str] = []
    for fact in inputs.telemedicine:
        if fact.basis is TelemedicineBasis.IN_PERSON_EVALUATION:
            when = fact.in_person_evaluation_on
            if when is not None and when <= on:
                return CheckResult(
                    CheckCode.TELEMEDICINE, CheckLevel.OK,
                    f"Remote visit; in-person medical evaluation on {when.isoformat()}.",
                )
        elif fact.basis is TelemedicineBasis.DEA_FLEXIBILITIES:
            end = rule.effective_to
            if rule.applies_on(on):
                days = None if end is None else (end - on).days
                if days is not None and days <= credential_warning_days(rules):
                    return CheckResult(
                        CheckCode.TELEMEDICINE, CheckLevel.WARNING,
                        f"Remote visit relying on the DEA telemedicine flexibilities, which end "
                        f"on {end} (in {days} days) unless extended: record an in-person "
                        "evaluation or another registration or exception before then.",
                        rule.id, rule.citation,
                    )
                return CheckResult(
                    CheckCode.TELEMEDICINE, CheckLevel.OK,
                    "Remote visit relying on the DEA telemedicine flexibilities"
                    + (f" (until {end})." if end else "."),
                    rule.id, rule.citation,
                )
            problems.append(
                f"the DEA telemedicine flexibilities ended on {end}" if end and on > end
                else "the DEA telemedicine flexibilities do not apply on this day"
            )
        elif fact.ends_on is None or on <= fact.ends_on:
            until = f" (until {fact.ends_on.isoformat()})" if fact.ends_on else ""
            return CheckResult(
                CheckCode.TELEMEDICINE, CheckLevel.OK,
                f"Remote visit relying on a recorded registration or exception{until}.",
                rule.id, rule.citation,
            )
        else:
            problems.append(
                f"the recorded registration or exception ended on {fact.ends_on.isoformat()}"
            )
    found = "; ".join(dict.fromkeys(problems))
    return CheckResult(
        CheckCode.TELEMEDICINE, CheckLevel.ERROR,
        "Remote prescription without a valid telemedicine record"
        + (f" ({found})" if found else "")
        + ": record the patient's in-person evaluation, or the flexibility, registration or "
        "exception relied on.",
        rule.id, rule.citation,
    )

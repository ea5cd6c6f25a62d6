"""Prescribing rules as data: each rule from ``resources/compliance/rules.json`` with its
source, the dates it applies and its parameters, and the pure functions that read them
(when a PDMP look-up is required, the refill limits, the telemedicine end date).

A rule that changes is a data update: the code asks "which rule applies on this day?" and uses
its parameters; it never holds a date or a limit of its own. Dates are calendar days; the
refill window is in days; ages are whole years.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

from ketadesk.core.errors import UserFacingError

RULES_FILE = ("compliance", "rules.json")
RULES_SCHEMA = "rules.schema.json"

FL_PDMP = "fl_pdmp_before_each_prescription"
NJ_PMP = "nj_pmp_mandatory_lookup"
REFILLS = "federal_schedule_iii_refills"
TELEMEDICINE_FLEXIBILITIES = "dea_telemedicine_flexibilities_2026"
CREDENTIALS = "prescriber_licence_and_dea_in_patient_state"
CONSENT = "fda_compounded_ketamine_warning_2023"

STATES = ("FL", "NJ")


class NjKetamineLookup(StrEnum):
    """The practice setting "New Jersey: also require a PMP look-up for ketamine"."""

    RULE_ONLY = "rule_only"  # only when the prescriber records a reasonable belief of misuse
    FIRST_AND_QUARTERLY = "first_and_quarterly"  # as for Schedule II: first time, then quarterly
    EVERY_PRESCRIPTION = "every_prescription"


@dataclass(frozen=True)
class ComplianceRule:
    """One rule: what it requires (own words), its source and the days it applies."""

    id: str
    kind: str
    state: str | None
    title: str
    summary: str
    source: str
    source_url: str
    effective_from: date | None
    effective_to: date | None
    verified_on: date
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def applies_on(self, day: date) -> bool:
        """True when ``day`` is within the rule's effective dates (both ends included)."""
        if self.effective_from is not None and day < self.effective_from:
            return False
        return self.effective_to is None or day <= self.effective_to

    def number(self, name: str) -> int:
        value = self.parameters[name]
        if not isinstance(value, int):
            raise UserFacingError(f"The compliance rule {self.id} has no whole number '{name}'.")
        return value

    @property
    def citation(self) -> str:
        """The source, with the dates it applies, for a checklist line."""
        start = self.effective_from.isoformat() if self.effective_from else "in force"
        end = self.effective_to.isoformat() if self.effective_to else "no end date"
        return f"{self.source} [{start} to {end}]"


@dataclass(frozen=True)
class ComplianceRules:
    rules: tuple[ComplianceRule, ...]

    def rule(self, rule_id: str) -> ComplianceRule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise UserFacingError(
            f"The compliance rules file has no rule '{rule_id}'; reinstall KetaDesk or restore "
            "resources/compliance/rules.json."
        )


def _day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def rules_from_data(data: Mapping[str, Any]) -> ComplianceRules:
    """Rules from the parsed JSON of a rules file (already checked against its schema)."""
    return ComplianceRules(
        tuple(
            ComplianceRule(
                id=item["id"],
                kind=item["kind"],
                state=item["state"],
                title=item["title"],
                summary=item["summary"],
                source=item["source"],
                source_url=item["source_url"],
                effective_from=_day(item["effective_from"]),
                effective_to=_day(item["effective_to"]),
                verified_on=date.fromisoformat(item["verified_on"]),
                parameters=dict(item["parameters"]),
            )
            for item in data["rules"]
        )
    )


@lru_cache(maxsize=1)
def load_compliance_rules() -> ComplianceRules:
    """The rules shipped in ``resources/compliance/rules.json`` (checked against the schema)."""
    from ketadesk.resources import load_validated_json

    return rules_from_data(load_validated_json(*RULES_FILE, schema=RULES_SCHEMA))


# --------------------------------------------------------------------------- dates


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months; the 31st becomes the month's last day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def start_of_day_utc(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


# --------------------------------------------------------------------------- PDMP


@dataclass(frozen=True)
class PdmpRequirement:
    """Whether a PDMP look-up is required before this prescription, and since when a
    recorded look-up counts (``None``: any look-up before the prescription counts)."""

    required: bool
    state: str
    rule: ComplianceRule
    reason: str
    counts_since: datetime | None = None


def pdmp_requirement(
    rules: ComplianceRules,
    *,
    state: str,
    age_years: int,
    issue_at: datetime,
    issue_on: date,
    previous_issued_at: Sequence[datetime],
    nj_setting: NjKetamineLookup,
    misuse_concern: bool = False,
) -> PdmpRequirement:
    """When the patient's state requires a PDMP look-up for a ketamine prescription issued at
    ``issue_at``. ``issue_on`` is the practice's calendar day of issue; ``previous_issued_at``
    are the patient's earlier (not voided) ketamine prescriptions; ``age_years`` is the
    patient's age on the issue day."""
    previous = sorted(t for t in previous_issued_at if t <= issue_at)
    last = previous[-1] if previous else None
    if state == "FL":
        rule = rules.rule(FL_PDMP)
        minimum = rule.number("minimum_age_years")
        if not rule.applies_on(issue_on):
            return PdmpRequirement(False, state, rule, "The Florida look-up rule is not in force.")
        if age_years < minimum:
            return PdmpRequirement(
                False, state, rule, f"Not required: the patient is under {minimum}."
            )
        return PdmpRequirement(
            True, state, rule,
            "Florida requires a look-up before each prescription"
            + (" (one recorded after the previous prescription)." if last else "."),
            counts_since=last,
        )
    if state != "NJ":
        raise UserFacingError(f"KetaDesk has no prescribing rules for the state '{state}'.")
    rule = rules.rule(NJ_PMP)
    if not rule.applies_on(issue_on):
        return PdmpRequirement(False, state, rule, "The New Jersey look-up rule is not in force.")
    if misuse_concern:
        return PdmpRequirement(
            True, state, rule,
            "New Jersey requires a look-up when misuse, abuse or diversion is suspected.",
            counts_since=last,
        )
    if nj_setting is NjKetamineLookup.EVERY_PRESCRIPTION:
        return PdmpRequirement(
            True, state, rule,
            "The practice requires a look-up before each ketamine prescription in New Jersey.",
            counts_since=last,
        )
    if nj_setting is NjKetamineLookup.FIRST_AND_QUARTERLY:
        if not previous:
            return PdmpRequirement(
                True, state, rule,
                "The practice requires a look-up before the first ketamine prescription.",
            )
        months = rule.number("quarter_months")
        quarter = start_of_day_utc(
            current_quarter_start(previous[0].date(), issue_on, months)
        )
        return PdmpRequirement(
            True, state, rule,
            "The practice requires a look-up every three months, counted from the first "
            f"prescription (this period began {quarter.date().isoformat()}).",
            counts_since=quarter,
        )
    return PdmpRequirement(
        False, state, rule,
        "Not required by the New Jersey rule for ketamine unless misuse is suspected.",
    )


def current_quarter_start(first_issued_on: date, on: date, months: int = 3) -> date:
    """The start of the three-month period (counted from the first prescription) that
    contains ``on``: the first day, or the first + 3, 6, 9 ... months."""
    start, step = first_issued_on, 0
    while add_months(first_issued_on, (step + 1) * months) <= on:
        step += 1
        start = add_months(first_issued_on, step * months)
    return start


def next_quarter_start(first_issued_on: date, on: date, months: int = 3) -> date:
    """The day the next three-month period begins after the one containing ``on``."""
    start = current_quarter_start(first_issued_on, on, months)
    step = 0
    while add_months(first_issued_on, step * months) <= start:
        step += 1
    return add_months(first_issued_on, step * months)


# --------------------------------------------------------------------------- refills


def max_refills(rules: ComplianceRules) -> int:
    """The most refills a Schedule III prescription may carry (21 CFR 1306.22)."""
    return rules.rule(REFILLS).number("max_refills")


def fill_window_days(rules: ComplianceRules) -> int:
    """Days after the issue date on which a fill may still be made (the issue day is day 0)."""
    return rules.rule(REFILLS).number("fill_window_days")


def last_fill_day(rules: ComplianceRules, issued_on: date) -> date:
    """The last day a fill or refill of a prescription issued on ``issued_on`` may be made."""
    return issued_on + timedelta(days=fill_window_days(rules))


# --------------------------------------------------------------------------- telemedicine


def telemedicine_flexibilities_end(rules: ComplianceRules) -> date | None:
    """The last day the DEA telemedicine flexibilities apply (``None``: no end date)."""
    return rules.rule(TELEMEDICINE_FLEXIBILITIES).effective_to


def credential_warning_days(rules: ComplianceRules) -> int:
    """How many days before a licence or registration expires KetaDesk starts warning."""
    return rules.rule(CREDENTIALS).number("warn_days_before_expiry")

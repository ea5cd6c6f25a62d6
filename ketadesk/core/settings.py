"""Practice settings: the one place their defaults live. Values are stored in the database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ketadesk.core.date_styles import DATE_STYLE_LABELS, DEFAULT_DATE_STYLE


@dataclass(frozen=True)
class SettingSpec:
    key: str
    label: str
    default: Any
    minimum: int | None = None
    maximum: int | None = None
    manage_users_only: bool = True
    # Clinical choices any physician may change (not admins), whether or not they manage users.
    physicians_edit: bool = False
    # For text settings: the only values accepted (empty = any text).
    choices: tuple[str, ...] = ()
    # What the settings screen shows for each choice (same order; empty = the choices as is).
    choice_labels: tuple[str, ...] = ()


SETTINGS: dict[str, SettingSpec] = {
    spec.key: spec
    for spec in (
        SettingSpec(
            "auto_lock_minutes", "Lock the screen after this many idle minutes", 10, 1, 120
        ),
        SettingSpec("practice_name", "Practice name", "KetaDesk Practice"),
        SettingSpec("practice_address", "Practice address", ""),
        SettingSpec("practice_phone", "Practice phone", ""),
        # Practice defaults for monitoring, used until a patient's protocol sets its own.
        SettingSpec(
            "default_checkin_every_days",
            "Practice default: a check-in is due every this many days (a protocol may override)",
            14, 1, 365,
        ),
        SettingSpec(
            "default_questionnaire_every_weeks",
            "Practice default: PHQ-9 and GAD-7 are due every this many weeks "
            "(a protocol may override)",
            4, 1, 52,
        ),
        # Interaction flags at or above this severity are shown in a modal before a protocol
        # is signed (lower ones still show on the review, just not modally).
        SettingSpec(
            "interaction_interrupt_threshold",
            "Interaction flags at or above this severity interrupt protocol signing",
            "major",
            choices=("contraindicated", "major", "moderate", "minor"),
        ),
        # Printed treatment plans show the dosing calendar for this many weeks (all of it when
        # the protocol is shorter).
        SettingSpec(
            "plan_calendar_weeks", "Treatment plans: weeks of the dosing calendar printed", 4, 1, 52
        ),
        # One date style for every date printed on a treatment plan (the patient's copy).
        SettingSpec(
            "plan_date_format",
            "Treatment plans: how dates are written",
            DEFAULT_DATE_STYLE,
            choices=tuple(DATE_STYLE_LABELS),
            choice_labels=tuple(DATE_STYLE_LABELS.values()),
        ),
        # Home visits: how long a visit pack may be out, and how long after that it still opens
        # (to finish the day's notes) before it opens only to be returned.
        SettingSpec("visit_lease_days", "Home-visit packs: lease length in days", 3, 1, 30),
        SettingSpec(
            "visit_grace_days",
            "Home-visit packs: days after the lease ends that a pack still opens",
            1, 0, 14,
        ),
        # Compliance (resources/compliance/rules.json holds the rules; these are the
        # practice's own choices on top of them).
        SettingSpec(
            "consent_valid_months",
            "Informed consent: ask the patient to consent again after this many months",
            12, 1, 60, manage_users_only=False, physicians_edit=True,
        ),
        SettingSpec(
            "nj_ketamine_pdmp_lookup",
            "New Jersey: also require a PMP look-up for ketamine (rule_only = only when misuse "
            "is suspected; first_and_quarterly; every_prescription)",
            "first_and_quarterly",
            choices=("rule_only", "first_and_quarterly", "every_prescription"),
            manage_users_only=False, physicians_edit=True,
        ),
    )
}


def register_setting(spec: SettingSpec) -> None:
    """Feature modules add their own settings here at import (one place for all defaults)."""
    SETTINGS[spec.key] = spec


def default_for(key: str) -> Any:
    return SETTINGS[key].default


def validate_setting(key: str, value: Any) -> Any:
    """Return the value to store, or raise UserFacingError in words."""
    from ketadesk.core.errors import UserFacingError

    spec = SETTINGS.get(key)
    if spec is None:
        raise UserFacingError(f"There is no practice setting called '{key}'.")
    if spec.choices and str(value).strip() not in spec.choices:
        shown = spec.choice_labels or spec.choices
        raise UserFacingError(f"{spec.label}: choose one of {', '.join(shown)}.")
    if isinstance(spec.default, int) and not isinstance(spec.default, bool):
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise UserFacingError(f"{spec.label}: enter a whole number.") from None
        if spec.minimum is not None and number < spec.minimum:
            raise UserFacingError(f"{spec.label}: the smallest allowed value is {spec.minimum}.")
        if spec.maximum is not None and number > spec.maximum:
            raise UserFacingError(f"{spec.label}: the largest allowed value is {spec.maximum}.")
        return number
    if isinstance(spec.default, str):
        return str(value).strip()
    return value

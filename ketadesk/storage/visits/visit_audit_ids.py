"""The laptop's audit events name records by the pack's own ids ("check-in 57"); a record has
one id in the pack and another in the practice. Appended to the practice's trail, each id is
written as the practice's id of the same record (found through its unique id, as the merge
does); an id that cannot be translated (the record never reached the practice, e.g. made and
removed on the laptop, or waiting in the conflict queue as a new record) is kept as the pack's
id with a mark, ``pack#57``, never passed off as a practice id."""

from __future__ import annotations

import re
from collections.abc import Callable

# The words an event's detail puts before a record's id, and the table that id belongs to
# (the services' own detail formats: "check-in 12 on …", "PHQ-9 7 of …", "review 3; …").
RECORD_NOUNS: dict[str, str] = {
    "check-in": "checkins",
    "dose log": "dose_log",
    "protocol": "patient_protocols",
    "review": "interaction_reviews",
    "allergy": "patient_allergies",
    "condition": "patient_conditions",
    "medication": "patient_medications",
    "vitals": "vital_signs",
    "PHQ-9": "questionnaire_responses",
    "GAD-7": "questionnaire_responses",
    "prescription": "prescriptions",
    "consent": "consent_records",
    "PDMP look-up": "pdmp_checks",
    "telemedicine record": "telemedicine_records",
    # "plan … (protocol version id 12)", "prescription 4 from protocol version 12".
    "protocol version id": "protocol_versions",
    "protocol version": "protocol_versions",
}
PACK_ID_MARK = "pack#"

_NAMED_ID = re.compile(
    r"(?<![\w-])("
    + "|".join(re.escape(noun) for noun in sorted(RECORD_NOUNS, key=len, reverse=True))
    + r") (\d+)\b"
)

# (table, the pack's id) -> the practice's id of the same record, or None.
OfficeIdOf = Callable[[str, int], "int | None"]


def practice_detail(detail: str, office_id_of: OfficeIdOf) -> str:
    """``detail`` with every record id it names written as the practice's id, or as
    ``pack#N`` when the record has no practice id."""

    def swap(found: re.Match[str]) -> str:
        noun, pack_id = found.group(1), int(found.group(2))
        office_id = office_id_of(RECORD_NOUNS[noun], pack_id)
        return f"{noun} {PACK_ID_MARK}{pack_id}" if office_id is None else f"{noun} {office_id}"

    return _NAMED_ID.sub(swap, detail)


def pack_patient_words(pack_patient_id: int) -> str:
    """Said in the detail of a laptop event whose patient has no practice id (yet)."""
    return f"; patient {PACK_ID_MARK}{pack_patient_id} of the pack"

"""Comparing and merging two saves of one form, field by field (no Qt, no database)."""

from __future__ import annotations

from ketadesk.core.edit_conflicts import (
    Choice,
    differing_fields,
    merged_values,
    suggested_choices,
)

LABELS = (("first_name", "First name"), ("phone", "Phone"), ("email", "Email"), ("city", "City"))
BASE = {"first_name": "Zoë", "phone": "(305) 555-0142", "email": "zoe@example.org", "city": ""}


def test_only_fields_that_differ_are_offered_in_form_order() -> None:
    mine = {**BASE, "email": "z@example.org", "city": "Tampa"}
    theirs = {**BASE, "phone": "(305) 555-0199", "city": "Tampa"}  # same city: no question
    found = differing_fields(BASE, mine, theirs, LABELS)
    assert [(d.name, d.label) for d in found] == [("phone", "Phone"), ("email", "Email")]
    phone, email = found
    assert (phone.mine, phone.theirs, phone.base) == ("(305) 555-0142", "(305) 555-0199",
                                                      "(305) 555-0142")
    assert phone.changed_by_them and not phone.changed_by_me and not phone.changed_by_both
    assert email.changed_by_me and not email.changed_by_them


def test_suggestion_keeps_my_typing_and_takes_their_untouched_changes() -> None:
    mine = {**BASE, "email": "z@example.org", "phone": "(305) 555-0100"}
    theirs = {**BASE, "phone": "(305) 555-0199", "first_name": "Zoe"}
    found = differing_fields(BASE, mine, theirs, LABELS)
    assert suggested_choices(found) == {
        "first_name": Choice.THEIRS,  # only they changed it
        "phone": Choice.MINE,  # both changed it: mine until the user says otherwise
        "email": Choice.MINE,  # only I changed it
    }
    assert [d.name for d in found if d.changed_by_both] == ["phone"]
    merged = merged_values(mine, found, suggested_choices(found))
    assert merged == {**BASE, "first_name": "Zoe", "phone": "(305) 555-0100",
                      "email": "z@example.org"}


def test_explicit_choices_win_and_fields_not_offered_keep_what_was_typed() -> None:
    mine = {**BASE, "email": "z@example.org", "phone": "(305) 555-0100", "weight": "72"}
    theirs = {**BASE, "phone": "(305) 555-0199"}
    found = differing_fields(BASE, mine, theirs, LABELS)
    everything_theirs = merged_values(mine, found, dict.fromkeys(("phone", "email"), Choice.THEIRS))
    assert everything_theirs == {**theirs, "weight": "72"}
    # A missing key counts as empty text on either side.
    assert [d.name for d in differing_fields({}, {"city": ""}, {}, LABELS)] == []
    assert differing_fields({}, {"city": "Ocala"}, {}, LABELS)[0].theirs == ""

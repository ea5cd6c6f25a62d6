"""Demo protocols: practice limits filled in (marked as demo values), confirmed copies of the
built-in templates, and a signed protocol for most active patients who have a current signed
interaction review (the reviews demo step runs first).

Deterministic for a given seed. A mix of templates, routes and doses; a few patients also have a
newer draft (to show version history and the diff) and one protocol is discontinued.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core.permissions import Actor
from ketadesk.core.practice_limits import LimitValue, PracticeLimits, RouteLimits
from ketadesk.core.protocol_templates import (
    ProtocolTemplate,
    builtin_templates,
    confirm_template,
)
from ketadesk.core.protocols import Protocol, Route, TitrationLadder
from ketadesk.models.patients import Patient
from ketadesk.storage.practice.practice_limits_store import (
    set_practice_limits,
)
from ketadesk.storage.practice.practice_templates import (
    save_template,
)
from ketadesk.storage.protocols import protocols as store
from ketadesk.storage.protocols.protocol_versions import (
    chart_weight,
    current_protocol,
)
from ketadesk.storage.reviews.interaction_reviews import review_states_for
from ketadesk.storage.security.database import PracticeDatabase

DEMO_SOURCE = "Demo values for trying KetaDesk — not clinical guidance"
#: Share of eligible active patients who get a signed protocol.
_SIGNED_SHARE = 0.92
#: Signing runs every check (about 0.1 s a patient), so very large demos stop here.
_MAX_SIGNED = 1500


def demo_practice_limits() -> PracticeLimits:
    """Limits for the demo practice only; every value carries ``DEMO_SOURCE``."""

    def route(mg_per_kg: float, mg: float, hours: float, per_week: float) -> RouteLimits:
        return RouteLimits(
            max_single_dose_mg_per_kg=LimitValue(mg_per_kg, DEMO_SOURCE),
            max_single_dose_mg=LimitValue(mg, DEMO_SOURCE),
            max_daily_mg=LimitValue(mg, DEMO_SOURCE),
            min_interval_hours=LimitValue(hours, DEMO_SOURCE),
            max_sessions_per_week=LimitValue(per_week, DEMO_SOURCE),
        )

    wide = route(4.0, 300.0, 24.0, 7.0)
    return PracticeLimits(
        routes={
            Route.SUBLINGUAL: wide,
            Route.ORAL_SOLUTION: wide,
            Route.INTRANASAL: route(1.5, 100.0, 48.0, 3.0),
            Route.OTHER: wide,
        },
        weight_max_age_days=LimitValue(180.0, DEMO_SOURCE),
    )


def demo_templates() -> tuple[ProtocolTemplate, ...]:
    """Confirmed practice copies of the built-in templates, named "… (demo practice)"."""
    return tuple(confirm_template(t, f"{t.name} (demo practice)") for t in builtin_templates())


def populate(database: PracticeDatabase, physician: Actor) -> None:
    """Limits, templates and signed protocols, then a few medications recorded after signing
    (so some reviews are stale under a signed protocol). The ``demo`` command records those
    medications as the admin logged in (:func:`populate_front_desk`), so each audit event is
    signed by the person it names; this all-in-one form is for tests."""
    populate_signed(database, physician)
    with database.session() as session:
        make_demo_reviews_stale(session, physician)


def populate_signed(database: PracticeDatabase, physician: Actor) -> None:
    """The ``demo`` step: limits, templates and signed protocols."""
    with database.session() as session:
        populate_demo_protocols(session, physician)


def populate_front_desk(database: PracticeDatabase, front_desk: Actor) -> None:
    """The front desk's part of the demo, run with the admin logged in: a few medications
    recorded after the physician signed, so exporting their plans is refused or asked about."""
    with database.session() as session:
        make_demo_reviews_stale(session, front_desk)


#: Medications the front desk records after signing (patient-reported, in our own words).
_FRONT_DESK_MEDICATIONS = (
    ("sertraline", "50 mg", "daily"),
    ("tramadol", "50 mg", "twice daily"),
    ("lorazepam", "0.5 mg", "at bedtime as needed"),
)
#: How many signed patients get one (the demo shows the stale-review path on each).
DEMO_STALE_AFTER_SIGNING = 3


def make_demo_reviews_stale(session: Session, front_desk: Actor) -> list[int]:
    """Record a new medication for the first few patients with a signed protocol, as the
    front desk would after the physician signed; returns their ids. Their interaction review
    is stale from then on, under a signed protocol."""
    from ketadesk.storage.patients.patient_medications import add_medication
    from ketadesk.storage.protocols.protocol_versions import active_signed_protocols

    chosen = sorted(active_signed_protocols(session))[:DEMO_STALE_AFTER_SIGNING]
    for patient_id, (name, dose, frequency) in zip(
        chosen, _FRONT_DESK_MEDICATIONS, strict=False
    ):
        add_medication(session, front_desk, patient_id, name, dose_text=dose,
                       frequency_text=frequency)
    return chosen


def _variant(rng: random.Random, template: ProtocolTemplate, start: date) -> Protocol:
    protocol = template.protocol
    ladder = protocol.ladder
    choice = rng.random()
    if choice < 0.3 and ladder.increment_mg is not None:
        # A gentler ladder: same start, smaller top.
        top = max(ladder.start_dose_mg, ladder.max_dose_mg - ladder.increment_mg)
        ladder = replace(ladder, max_dose_mg=top)
    elif choice < 0.5:
        ladder = replace(ladder, sessions_per_step=ladder.sessions_per_step + 1)
    review_in = rng.choice((4, 6, 8))
    if protocol.route is Route.SUBLINGUAL and protocol.kind.value == "microdose" and \
            rng.random() < 0.25:
        protocol = replace(protocol, route=Route.ORAL_SOLUTION,
                           formulation="Compounded ketamine oral solution", unit_name="mL",
                           strength_mg_per_unit=10.0)
    return replace(
        protocol,
        ladder=TitrationLadder(
            start_dose_mg=ladder.start_dose_mg,
            max_dose_mg=ladder.max_dose_mg,
            increment_mg=ladder.increment_mg,
            step_doses_mg=tuple(d for d in ladder.step_doses_mg if d <= ladder.max_dose_mg),
            step_up_rule=ladder.step_up_rule,
            sessions_per_step=ladder.sessions_per_step,
        ),
        review_date=start + timedelta(weeks=review_in),
    )


def populate_demo_protocols(
    session: Session, physician: Actor, *, seed: int = 20261127, today: date | None = None
) -> int:
    """Fill in demo limits and templates, then sign protocols; returns how many were signed.

    Only patients whose interaction review is current are given a signed protocol (signing
    needs one); a protocol that would not pass validation is left as a draft.
    """
    rng = random.Random(seed)
    day = today or datetime.now(UTC).date()
    set_practice_limits(session, physician, demo_practice_limits())
    templates = demo_templates()
    for template in templates:
        save_template(session, physician, template)
    patient_ids = list(
        session.execute(
            select(Patient.id).where(Patient.status == "active").order_by(Patient.id)
        ).scalars()
    )
    states = review_states_for(session, patient_ids)
    signed = 0
    discontinued = False
    for patient_id in patient_ids:
        if signed >= _MAX_SIGNED:
            break
        if rng.random() > _SIGNED_SHARE or states.get(patient_id) != "current":
            continue
        weight = chart_weight(session, patient_id)
        # Lighter patients get the microdose or intranasal template more often.
        weights = (5, 2, 2) if weight is not None and weight.kg < 60 else (4, 3, 2)
        template = rng.choices(templates, weights=weights)[0]
        start = day - timedelta(days=rng.randrange(0, 70))
        protocol = _variant(rng, template, start)
        if protocol.review_date is not None and protocol.review_date < day:
            protocol = replace(protocol, review_date=day + timedelta(weeks=2))
        check = store.signing_check(session, physician, patient_id, protocol, day)
        if check.errors:
            template = templates[0]
            protocol = replace(template.protocol, review_date=day + timedelta(weeks=4))
            check = store.signing_check(session, physician, patient_id, protocol, day)
        draft = store.save_draft(session, physician, patient_id, protocol, start,
                                 template_name=template.name)
        if check.errors:
            continue  # stays a draft: the chart shows why it cannot be signed
        store.sign_version(session, physician, draft.version_id,
                           acknowledged_warnings=[m.code for m in check.warnings], today=day)
        signed += 1
        roll = rng.random()
        if roll < 0.1:
            # A newer draft after signing shows version history and the diff.
            edit = store.create_draft_from_previous(session, physician, patient_id)
            top = edit.protocol.ladder.max_dose_mg
            step = edit.protocol.ladder.increment_mg or 5.0
            store.save_draft(
                session, physician, patient_id,
                replace(edit.protocol,
                        ladder=replace(edit.protocol.ladder, max_dose_mg=max(
                            edit.protocol.ladder.start_dose_mg, top - step)),
                        notes="Hold at a lower top dose until the next visit."),
                edit.start_date,
            )
        elif roll < 0.14 and not discontinued:
            course = current_protocol(session, patient_id)
            if course is not None:
                store.discontinue_protocol(session, physician, course.protocol_id,
                                           "Patient chose to stop treatment (demo).")
                discontinued = True
                signed -= 1
    return signed

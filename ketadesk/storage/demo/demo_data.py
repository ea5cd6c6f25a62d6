"""Synthetic demo patients: realistic-looking charts for people who do not exist.

Deterministic for a given seed. Bulk inserts keep ``--patients 50000`` well under a minute.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from ketadesk.core.mrn import format_mrn
from ketadesk.core.search_text import fold_for_search
from ketadesk.models.patients import (
    Patient,
    PatientCondition,
    PatientMedication,
    PatientStatusChange,
    VitalSign,
)
from ketadesk.storage.roster.roster_status import mark_patients_changed

FIRST_NAMES = (
    "Zoë",
    "Mateo",
    "Aaliyah",
    "Björn",
    "Chloé",
    "Darnell",
    "Esperanza",
    "Fatima",
    "Giovanni",
    "Hana",
    "Ibrahim",
    "Jasmine",
    "Kenji",
    "Lucía",
    "Malik",
    "Nadia",
    "Óscar",
    "Priya",
    "Quinn",
    "Rosalind",
    "Santiago",
    "Tamsin",
    "Uriel",
    "Valentina",
    "Wendell",
    "Ximena",
    "Yusuf",
    "Zachary",
    "Amélie",
    "Bartholomew",
    "Celeste",
    "Desmond",
    "Élodie",
    "Florian",
    "Gwendolyn",
    "Hugo",
    "Inés",
    "Jerome",
    "Kalani",
    "Leopold",
    "Marisol",
    "Nikolai",
    "Odessa",
    "Percival",
    "Renée",
    "Soren",
    "Thaddeus",
    "Ulla",
    "Violet",
    "Winona",
)
LAST_NAMES = (
    "Ñúñez-Łukasiewicz",
    "Abernathy-Quill",
    "Brightwater",
    "Castellanos",
    "Dunmore",
    "Eriksdóttir",
    "Fairweather",
    "Galloway",
    "Hargreave",
    "Iwasaki",
    "Jablonski",
    "Kowalczyk",
    "Lindqvist",
    "Montgomery-Reyes",
    "Nakashima",
    "O'Donnell",
    "Pettigrew",
    "Quintero",
    "Rasmussen",
    "Szymańska",
    "Thistlewood",
    "Underhill",
    "Vasquez-Moreau",
    "Whitcombe",
    "Xiong",
    "Yarborough",
    "Zielinski",
    "Ashgrove",
    "Blackwood",
    "Cortázar",
    "Delacroix",
    "Ellsworth",
    "Fenwick",
    "Grünewald",
    "Holloway",
    "Ignatius",
    "Jovanović",
    "Kingsley",
    "Larkspur",
    "Marchetti",
    "Novak",
    "Okonkwo",
    "Pemberton",
    "Quackenbush",
    "Rourke",
    "Sørensen",
    "Tremblay",
    "Ulrich",
    "Vance",
    "Wexley",
)
# Real cities with the county each lies in, so demo addresses are consistent.
CITIES = {
    "FL": (
        ("Gainesville", "Alachua"),
        ("Tampa", "Hillsborough"),
        ("Orlando", "Orange"),
        ("Tallahassee", "Leon"),
        ("Sarasota", "Sarasota"),
        ("Naples", "Collier"),
        ("Jacksonville", "Duval"),
        ("Pensacola", "Escambia"),
    ),
    "NJ": (
        ("Trenton", "Mercer"),
        ("Princeton", "Mercer"),
        ("Camden", "Camden"),
        ("Newark", "Essex"),
        ("Hoboken", "Hudson"),
        ("Morristown", "Morris"),
        ("Toms River", "Ocean"),
        ("Cherry Hill", "Camden"),
    ),
}
MEDICATIONS = (
    "sertraline 50 mg daily",
    "Zoloft 100 mg qam",
    "escitalopram 10 mg daily",
    "bupropion XL 150 mg qam",
    "venlafaxine ER 75 mg daily",
    "trazodone 50 mg at bedtime",
    "Ativan 1 mg at bedtime",
    "clonazepam 0.5 mg bid",
    "alprazolam 0.25 mg prn",
    "zolpidem 5 mg at bedtime",
    "gabapentin 300 mg tid",
    "pregabalin 75 mg bid",
    "lamotrigine 100 mg bid",
    "Adderall XR 20 mg qam",
    "Ritalin LA 20mg qam",
    "modafinil 100 mg qam",
    "Percocet 5/325 prn",
    "tramadol 50 mg prn",
    "buprenorphine 8 mg daily",
    "naltrexone 50 mg daily",
    "levothyroxine 75 mcg daily",
    "lisinopril 10 mg daily",
    "amlodipine 5 mg daily",
    "metformin 500 mg bid",
    "atorvastatin 20 mg nightly",
    "melatonin 3 mg OTC",
    "omeprazole 20 mg daily",
    "Sudafed 30 mg prn",
    "cetirizine 10 mg daily",
    "hydroxyzine 25 mg prn",
    "quetiapine 25 mg at bedtime",
    "aripiprazole 5 mg daily",
    "propranolol 10 mg prn",
    "cyclobenzaprine 10 mg prn",
    "St John's wort 300 mg tid",
    "memantine 10 mg bid",
    "clarithromycin 500 mg bid",
    "theophylline 300 mg bid",
    "vitamin D 2000 IU daily",
    "ibuprofen 400 mg prn",
)
CONDITIONS = (
    "major depressive disorder",
    "treatment-resistant depression",
    "generalized anxiety disorder",
    "PTSD",
    "chronic low back pain",
    "fibromyalgia",
    "hypertension",
    "hypothyroidism",
    "migraine",
    "glaucoma",
    "alcohol use disorder, in sustained remission",
    "asthma",
    "type 2 diabetes",
    "obstructive sleep apnea",
)
ZIP_PREFIXES = {"FL": ("32", "33", "34"), "NJ": ("07", "08")}
STATUSES = ("screening", "active", "active", "active", "paused", "discharged")


_FAMILY = ("spouse", "parent", "sibling", "partner", "child")

def _phone(rng: random.Random, state: str) -> str:
    area = rng.choice(
        ("352", "813", "407", "850") if state == "FL" else ("609", "732", "856", "973")
    )
    return f"({area}) 555-{rng.randrange(100, 200):04d}"  # 555-01xx: reserved fictional numbers


def _new_patient_ids(session: Session, count: int) -> list[int]:
    """Ids (and MRN numbers) for ``count`` new patients. On a practice server they are drawn
    from the table's id sequence, so a patient added afterwards gets the next free id; a
    practice file numbers on from the highest id."""
    if session.get_bind().dialect.name == "postgresql":
        return list(
            session.execute(
                sql_text("SELECT nextval(pg_get_serial_sequence('patients', 'id')) "
                     "FROM generate_series(1, :n)"),
                {"n": count},
            ).scalars()
        )
    highest = session.execute(
        select(Patient.id).order_by(Patient.id.desc()).limit(1)
    ).scalar_one_or_none()
    return list(range((highest or 0) + 1, (highest or 0) + 1 + count))


def populate_demo_patients(
    session: Session,
    count: int,
    *,
    entered_by: str,
    seed: int = 20261125,
    today: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert ``count`` synthetic patients with medications, conditions and vitals."""
    rng = random.Random(seed)
    today = today or datetime.now(UTC).date()
    now = datetime.now(UTC)
    numbers = _new_patient_ids(session, count)
    batch = 2000
    for offset in range(0, count, batch):
        patients, meds, conds, vitals, changes = [], [], [], [], []
        for number in numbers[offset : offset + batch]:
            state = rng.choice(("FL", "NJ"))
            city, county = rng.choice(CITIES[state])
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            dob = today - timedelta(days=rng.randrange(19 * 365, 78 * 365))
            status = rng.choice(STATUSES)
            phone = _phone(rng, state)
            patients.append(
                {
                    "id": number,
                    "mrn": format_mrn(number),
                    "first_name": first,
                    "last_name": last,
                    "first_name_folded": fold_for_search(first),
                    "last_name_folded": fold_for_search(last),
                    "dob": dob,
                    "sex": rng.choice(("female", "male", "female", "male", "intersex", "unknown")),
                    "phone": phone,
                    "phone_digits": "".join(c for c in phone if c.isdigit()),
                    "email": f"{fold_for_search(first)}.{number}@example.org",
                    "address_line1": f"{rng.randrange(10, 9999)} {rng.choice(LAST_NAMES)} Street",
                    "city": city,
                    "state": state,
                    "zip_code": rng.choice(ZIP_PREFIXES[state]) + f"{rng.randrange(100, 999):03d}",
                    "county": county,
                    "emergency_contact_name": f"{rng.choice(FIRST_NAMES)} {last}",
                    "emergency_contact_phone": _phone(rng, state),
                    # Same last name: family. Picked from the number, not the random stream,
                    # so the rest of the demo practice stays as it was.
                    "emergency_contact_relationship": _FAMILY[number % len(_FAMILY)],
                    "sitter_name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                    "sitter_phone": _phone(rng, state),
                    "status": status,
                    "pregnant": False,
                    "height_cm": round(rng.uniform(150, 195), 1),
                    "last_visit_on": today - timedelta(days=rng.randrange(0, 120)),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            for text in rng.sample(MEDICATIONS, rng.randrange(0, 6)):
                meds.append(
                    {
                        "patient_id": number,
                        "entered_text": text,
                        "source": rng.choice(("patient_reported", "verified")),
                        "is_active": True,
                        "entered_by": entered_by,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            for text in rng.sample(CONDITIONS, rng.randrange(1, 4)):
                conds.append(
                    {
                        "patient_id": number,
                        "entered_text": text,
                        "is_active": True,
                        "entered_by": entered_by,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            weight = round(rng.uniform(50, 120), 1)
            for back in (90, 30, rng.randrange(1, 20)):
                vitals.append(
                    {
                        "patient_id": number,
                        "measured_at": now - timedelta(days=back),
                        "systolic": rng.randrange(104, 166),
                        "diastolic": rng.randrange(62, 100),
                        "heart_rate": rng.randrange(56, 96),
                        "weight_kg": round(weight + rng.uniform(-1.5, 1.5), 1),
                        "entered_by": entered_by,
                    }
                )
            if status != "screening":
                changes.append(
                    {
                        "patient_id": number,
                        "from_status": "screening",
                        "to_status": status,
                        "reason": "demo data",
                        "changed_by": entered_by,
                        "changed_at": now,
                    }
                )
        for model, rows in (
            (Patient, patients),
            (PatientMedication, meds),
            (PatientCondition, conds),
            (VitalSign, vitals),
            (PatientStatusChange, changes),
        ):
            if rows:
                session.execute(insert(model), rows)
        mark_patients_changed(session, numbers[offset : offset + batch])
        if progress:
            progress(min(offset + batch, count))
    return count

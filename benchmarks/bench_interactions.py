"""Interaction knowledge base: load (goal <= 100 ms) and a 20-line check after load (<= 5 ms).

Floors: a plain ``json.load`` of the same four files, and reading the 20 lines' names alone.
"""

from __future__ import annotations

import json

from benchmarks._harness import BenchResult, median_ms

TWENTY_LINES = [
    "Klonopin 0.5 mg bid", "Percocet 5/325 prn", "sertraline 100 mg daily",
    "Adderall XR 20 mg qam", "Synthroid 88 mcg daily", "Lamictal 200 mg daily",
    "metformin 500 mg bid", "Lipitor 40 mg qhs", "lisinopril 10 mg", "melatonin 3 mg OTC",
    "clonazepan 0.5", "hydroxizine 25 mg prn", "Wellbutrin XL 300 mg", "gabapentin 300 mg tid",
    "Plavix 75 mg", "omeprazole 20 mg", "Vitamin D 2000 units", "foobarium 10 mg",
    "St. John's Wort 300 mg tid", "Ambien 5 mg at bedtime",
]
CONDITIONS = ["HTN", "major depressive disorder", "GERD"]


def run() -> list[BenchResult]:
    from ketadesk.core import medication_names
    from ketadesk.core.interaction_check import Vitals, check_patient
    from ketadesk.core.knowledge_base import KB_FILES, default_kb_dir, load_knowledge_base_from

    directory = default_kb_dir()

    def plain_json() -> None:
        for name in KB_FILES:
            json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))

    load_ms = median_ms(lambda: load_knowledge_base_from(directory), repeat=7)
    floor_load = median_ms(plain_json, repeat=7)

    kb = load_knowledge_base_from(directory)
    vitals = Vitals(systolic=138, diastolic=86)

    def cold_check() -> None:
        medication_names._fuzzy_cached.cache_clear()
        check_patient(TWENTY_LINES, CONDITIONS, vitals, False, kb)

    def read_names_only() -> None:
        for line in TWENTY_LINES:
            kb.names.get(line.split()[0].lower())

    check_ms = median_ms(cold_check, repeat=21)
    warm_ms = median_ms(lambda: check_patient(TWENTY_LINES, CONDITIONS, vitals, False, kb),
                        repeat=21)
    floor_check = median_ms(read_names_only, repeat=21)
    return [
        BenchResult("interactions: load + validate knowledge base", load_ms,
                    "json.load of the same files", floor_load, goal="goal <= 100 ms"),
        BenchResult("interactions: 20-line check (fuzzy cache cold)", check_ms,
                    "dict lookup of 20 first words", floor_check, goal="goal <= 5 ms"),
        BenchResult("interactions: 20-line check (fuzzy cache warm)", warm_ms,
                    "dict lookup of 20 first words", floor_check, goal="goal <= 5 ms"),
    ]

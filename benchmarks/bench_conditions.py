"""Condition reading: 20 typed condition lines after the knowledge base is loaded (<= 5 ms).

Cold clears the reader's misspelling cache but keeps the built lexicon, as after the
first review of a session; warm repeats the same lines (whole lines are never cached:
they are patient data). Floor: splitting the 20 lines
into words, which any reader must do.
"""

from __future__ import annotations

from benchmarks._harness import BenchResult, median_ms

TWENTY_CONDITIONS = [
    "HTN - controlled on lisinopril", "hx of psychosis 2019", "AUD in remission x 2 yrs",
    "denies SI", "DM2 on metformin, A1c 7.1", "migraine w/o aura 2-3x/month",
    "asthma - mild intermittent, albuterol prn", "GERD, hypothyroid on replacement",
    "FHx schizophrenia (brother)", "possible bipolar", "BPD", "I71.4",
    "schizofrenia", "uncontrolled hypertension 168/102", "OSA on CPAP",
    "denies psychosis but reports passive SI", "s/p cholecystectomy 2012",
    "Child-Pugh B cirrhosis", "mother with Alzheimer's", "CAD s/p PCI 2019, on aspirin",
]


def run() -> list[BenchResult]:
    from ketadesk.core import condition_reading
    from ketadesk.core.knowledge_base import default_kb_dir, load_knowledge_base_from

    kb = load_knowledge_base_from(default_kb_dir())
    condition_reading.read_condition_line("HTN", kb)  # builds the lexicon once

    def cold() -> None:
        condition_reading._fuzzy_concept.cache_clear()
        for line in TWENTY_CONDITIONS:
            condition_reading.read_condition_line(line, kb)

    def warm() -> None:
        for line in TWENTY_CONDITIONS:
            condition_reading.read_condition_line(line, kb)

    def floor() -> None:
        for line in TWENTY_CONDITIONS:
            line.casefold().split()

    def lexicon() -> None:
        condition_reading._lexicon.cache_clear()
        condition_reading._lexicon(kb)

    floor_ms = median_ms(floor, repeat=21)
    return [
        BenchResult("conditions: 20 lines (misspelling cache cold)", median_ms(cold, repeat=21),
                    "split 20 lines into words", floor_ms, goal="goal <= 5 ms"),
        BenchResult("conditions: 20 lines (misspelling cache warm)", median_ms(warm, repeat=21),
                    "split 20 lines into words", floor_ms, goal="goal <= 5 ms"),
        BenchResult("conditions: build reading lexicon (once per KB)", median_ms(lexicon),
                    "split 20 lines into words", floor_ms, goal="part of KB load"),
    ]

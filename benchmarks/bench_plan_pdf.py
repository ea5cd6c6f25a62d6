"""Treatment-plan PDF: one plan against a raw reportlab floor, and a 500-plan batch on 2 cores.

Goals (issue 6): one plan <= 3x a raw reportlab document of the same page count, measured in the
same run; 500 plans <= 30 s on 2 cores, using both.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

from pypdf import PdfReader
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate

from benchmarks._harness import BenchResult, median_ms
from ketadesk.reports.plan_batch import JobStatus, PlanJob, render_plan_files
from ketadesk.reports.plan_pdf import render_plan_pdf
from tests.unit.test_plan_pdf import synthetic_plan

BATCH_SIZE = 500
WORKERS = 2
_LINE = (
    "Blood pressure before and one hour after the dose; the sitter stays until the effects "
    "have worn off and nobody drives until the next day."
)


def raw_reportlab_pdf(pages: int) -> bytes:
    """A plain platypus document of ``pages`` full pages of body text (built-in Helvetica)."""
    style = getSampleStyleSheet()["BodyText"]
    story: list[object] = []
    for page in range(pages):
        story += [Paragraph(f"{page}.{line} {_LINE}", style) for line in range(20)]
        if page < pages - 1:
            story.append(PageBreak())
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=LETTER).build(story)
    return buffer.getvalue()


def _page_count(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


def run() -> list[BenchResult]:
    doc = synthetic_plan()
    plan_pages = _page_count(render_plan_pdf(doc))
    raw_pages = _page_count(raw_reportlab_pdf(plan_pages))
    plan_ms = median_ms(lambda: render_plan_pdf(doc))
    raw_ms = median_ms(lambda: raw_reportlab_pdf(plan_pages))
    encrypted_ms = median_ms(lambda: render_plan_pdf(doc, password="bench-password"))

    jobs_docs = [doc] * BATCH_SIZE
    with tempfile.TemporaryDirectory(prefix="ketadesk-bench-") as folder:
        jobs = [
            PlanJob(doc=d, path=Path(folder) / f"plan-{i:04d}.pdf") for i, d in enumerate(jobs_docs)
        ]
        cpu_before = os.times()
        start = time.perf_counter()
        results = render_plan_files(jobs, workers=WORKERS, overwrite=True)
        batch_ms = (time.perf_counter() - start) * 1000
        cpu_after = os.times()
    written = sum(r.status is JobStatus.WRITTEN for r in results)
    child_cpu_s = (cpu_after.children_user + cpu_after.children_system) - (
        cpu_before.children_user + cpu_before.children_system
    )
    # Children's CPU time is only counted once they have been reaped, which the pool does on exit.
    cores_used = child_cpu_s / (batch_ms / 1000) if batch_ms else 0.0

    return [
        BenchResult(
            name=f"plan pdf, one plan ({plan_pages} pages)",
            median_ms=plan_ms,
            floor_name=f"raw reportlab, {raw_pages} pages",
            floor_ms=raw_ms,
            goal="<= 3x floor",
            extra=f"ratio {plan_ms / raw_ms:.2f}x",
        ),
        BenchResult(
            name="plan pdf, one plan, AES-256 password",
            median_ms=encrypted_ms,
            floor_name="plan pdf, one plan",
            floor_ms=plan_ms,
            extra=f"encryption adds {encrypted_ms - plan_ms:.0f} ms",
        ),
        BenchResult(
            name=f"plan pdf, batch of {BATCH_SIZE} ({WORKERS} workers)",
            median_ms=batch_ms,
            floor_name=f"{BATCH_SIZE} x one plan / {WORKERS}",
            floor_ms=BATCH_SIZE * plan_ms / WORKERS,
            goal="<= 30000 ms on 2 cores",
            extra=(
                f"{written}/{BATCH_SIZE} written; worker CPU {child_cpu_s:.1f} s "
                f"= {cores_used:.2f} cores busy; cpu_count={os.cpu_count()}; "
                f"on {WORKERS} idle cores ~{child_cpu_s / WORKERS:.1f} s (worker CPU / {WORKERS})"
            ),
        ),
    ]

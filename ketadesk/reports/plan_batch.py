"""Render many treatment plans to files on several processes, with progress and cancel.

The UI (roster export, off the GUI thread) and the CLI (``export-plan --all``) both call
:func:`render_plan_files`. Each job succeeds or fails on its own; nothing is skipped silently.
Workers are started with the "spawn" method, which is safe when the caller has Qt threads and is
what Windows and macOS use anyway. A PyInstaller bundle must call
``multiprocessing.freeze_support()`` at start-up for the workers to launch.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ketadesk.core.errors import UserFacingError
from ketadesk.core.os_errors import os_error_in_words
from ketadesk.core.private_files import is_regular_or_absent, write_private_bytes
from ketadesk.reports.plan_document import PlanDocument, plan_content_hash
from ketadesk.reports.plan_pdf import render_plan_pdf

#: How many jobs may wait in a worker's queue; small, so cancel takes effect quickly.
_QUEUE_PER_WORKER = 3


class JobStatus(StrEnum):
    WRITTEN = "written"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class PlanJob:
    """One plan to write to ``path``; ``password`` (optional) encrypts it and is never stored."""

    doc: PlanDocument
    path: Path
    password: str | None = None

    def __repr__(self) -> str:  # keep passwords and patient data out of logs and tracebacks
        return f"PlanJob(plan_id={self.doc.plan_id!r}, version={self.doc.version})"


@dataclass(frozen=True)
class PlanJobResult:
    """What happened to one job.

    ``content_hash`` is the plan's hash (as printed in the PDF) and ``file_sha256`` the SHA-256 of
    the written file, for the export audit. ``message`` explains a skip or failure in words a
    clinician understands and never contains patient data.
    """

    plan_id: str
    version: int
    path: Path
    status: JobStatus
    content_hash: str | None = None
    file_sha256: str | None = None
    message: str | None = None

    @property
    def is_written(self) -> bool:
        return self.status is JobStatus.WRITTEN


CancelCheck = Callable[[], bool]
ProgressCallback = Callable[[int, int], None]


def _write_atomically(path: Path, data: bytes) -> None:
    """A unique 0600 temp file in the target folder, fsync, rename (never a device node)."""
    if not is_regular_or_absent(path):
        raise UserFacingError(
            f"{path.name} is not an ordinary file (a device or a pipe); nothing was written."
        )
    write_private_bytes(path, data)


def _result(job: PlanJob, status: JobStatus, message: str | None = None) -> PlanJobResult:
    return PlanJobResult(
        plan_id=job.doc.plan_id,
        version=job.doc.version,
        path=job.path,
        status=status,
        message=message,
    )


def render_plan_file(job: PlanJob, *, overwrite: bool = False) -> PlanJobResult:
    """Render one job to its file and return what happened (it does not raise for bad input)."""
    if job.path.exists() and not overwrite:
        return _result(job, JobStatus.SKIPPED, "A file with this name already exists.")
    try:
        pdf = render_plan_pdf(job.doc, password=job.password)
        _write_atomically(job.path, pdf)
    except UserFacingError as error:
        return _result(job, JobStatus.FAILED, error.message)
    except OSError as error:
        return _result(
            job, JobStatus.FAILED, f"The file could not be written: {os_error_in_words(error)}."
        )
    return PlanJobResult(
        plan_id=job.doc.plan_id,
        version=job.doc.version,
        path=job.path,
        status=JobStatus.WRITTEN,
        content_hash=plan_content_hash(job.doc),
        file_sha256=hashlib.sha256(pdf).hexdigest(),
    )


def _cancelled(job: PlanJob) -> PlanJobResult:
    return _result(job, JobStatus.CANCELLED, "Cancelled before this plan was written.")


def _crashed(job: PlanJob, error: BaseException) -> PlanJobResult:
    reason = type(error).__name__
    return _result(
        job, JobStatus.FAILED, f"Rendering stopped unexpectedly ({reason}); try this plan again."
    )


def _as_check(cancel: threading.Event | CancelCheck | None) -> CancelCheck:
    if cancel is None:
        return lambda: False
    if isinstance(cancel, threading.Event):
        return cancel.is_set
    return cancel


def render_plan_files(
    jobs: Sequence[PlanJob],
    workers: int = 2,
    *,
    cancel: threading.Event | CancelCheck | None = None,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
) -> list[PlanJobResult]:
    """Render every job on ``workers`` processes; return one result per job, in job order.

    ``cancel`` (an Event or a no-argument callable) stops the batch: jobs not yet started are
    reported as cancelled, jobs already rendering finish. ``progress(done, total)`` is called in
    the caller's thread after each job.
    """
    should_cancel = _as_check(cancel)
    total = len(jobs)
    results: list[PlanJobResult | None] = [None] * total
    done = 0

    def finish(index: int, result: PlanJobResult) -> None:
        nonlocal done
        results[index] = result
        done += 1
        if progress is not None:
            progress(done, total)

    if workers <= 1 or total <= 1:
        for index, job in enumerate(jobs):
            if should_cancel():
                break
            finish(index, render_plan_file(job, overwrite=overwrite))
        return [r if r is not None else _cancelled(jobs[i]) for i, r in enumerate(results)]

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: dict[Future[PlanJobResult], int] = {}
        next_index = 0
        broken: BaseException | None = None
        while (next_index < total or pending) and broken is None:
            if should_cancel():
                break
            while next_index < total and len(pending) < workers * _QUEUE_PER_WORKER:
                future = pool.submit(render_plan_file, jobs[next_index], overwrite=overwrite)
                pending[future] = next_index
                next_index += 1
            finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in finished:
                index = pending.pop(future)
                try:
                    finish(index, future.result())
                except BrokenProcessPool as error:
                    broken = error
                    finish(index, _crashed(jobs[index], error))
                except Exception as error:  # a bug in one plan must not sink the batch
                    finish(index, _crashed(jobs[index], error))
        for future, index in pending.items():
            if future.cancel():
                continue
            try:  # already running: let it finish so its file is reported truthfully
                finish(index, future.result())
            except Exception as error:
                finish(index, _crashed(jobs[index], error))
        pool.shutdown(wait=True, cancel_futures=True)
    if broken is not None:
        return [r if r is not None else _crashed(jobs[i], broken) for i, r in enumerate(results)]
    return [r if r is not None else _cancelled(jobs[i]) for i, r in enumerate(results)]

"""Bundles written as files, in this process or on worker processes.

Mapping and validating FHIR models is pure Python work, so a large export (``--all``, the
practice export) builds and writes its bundles on worker processes while this process reads
the next charts from the database. Workers are started with "spawn" (safe beside Qt threads,
and what Windows and macOS use); each is given plain snapshots, never a database session or
key (the charts are read where the practice was unlocked, as the plan export does).

Each bundle is written under a ``.partial`` name and renamed when complete, so a file with
the bundle's own name is always whole; a stop or a failure removes the partial files.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from ketadesk.core.fhir_export_mapping import (
    ExportContext,
    PatientSnapshot,
    bundle_json,
    patient_bundle,
)

#: Patients per job sent to a worker; a few jobs wait per worker, so a stop is quick (the
#: jobs not started are dropped, the ones under way finish: at most a few hundred ms).
CHUNK = 50
PARTIAL_SUFFIX = ".partial"
_QUEUE_PER_WORKER = 3
_BINARY = getattr(os, "O_BINARY", 0)  # Windows would otherwise translate line ends


@dataclass(frozen=True)
class WrittenBundles:
    files: tuple[Path, ...]
    resources: int
    stopped: bool


def bundle_file_name(mrn: str) -> str:
    return f"{mrn}.fhir.json"


def write_bundle_file(target: Path, data: bytes) -> None:
    """One bundle of a many-patient export as a 0600 file inside the private folder, written
    under a partial name and renamed when whole.

    Not synced file by file (50,000 syncs would take minutes): a bundle cut short by a crash
    is left as a ``.partial`` file and simply exported again; the folder is synced once at
    the end of the export.
    """
    # Plain descriptor writes: a file object would add a buffer and two system calls (fstat,
    # isatty) to each of 50,000 files.
    partial = f"{target}{PARTIAL_SUFFIX}"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _BINARY, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def remove_partial_files(folder: Path) -> None:
    """Remove bundles left half-written (a worker stopped or failed mid-file)."""
    for leftover in folder.glob(f"*{bundle_file_name('')}{PARTIAL_SUFFIX}"):
        leftover.unlink(missing_ok=True)


def sync_folder(folder: Path) -> None:
    if hasattr(os, "O_DIRECTORY"):  # POSIX: make the new names durable; Windows has no need
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _leave_interrupts_to_the_parent() -> None:
    """Workers ignore Ctrl-C: the process that started them decides whether it stops the
    export (after the files under way) or ends, and then shuts them down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def write_bundles(
    context: ExportContext, snapshots: Sequence[PatientSnapshot], folder: Path
) -> list[tuple[Path, int]]:
    """Build, validate and write each patient's bundle; (file, resource count) per patient."""
    written = []
    for snapshot in snapshots:
        bundle = patient_bundle(snapshot, context)
        target = folder / bundle_file_name(snapshot.mrn)
        write_bundle_file(target, bundle_json(bundle))
        written.append((target, len(bundle.entry or ())))
    return written


def write_all(
    batches: Iterable[Sequence[PatientSnapshot]],
    context: ExportContext,
    folder: Path,
    *,
    total: int,
    workers: int,
    progress: Callable[[int, int], bool | None] | None,
    chunk: int | None = None,
) -> WrittenBundles:
    """Write every batch's bundles (on ``workers`` processes when more than 1), in order of
    completion; ``progress(done, total)`` returning False stops after the jobs under way
    (jobs not yet started are dropped). Every file listed is complete; on a failure the
    partial files are removed before the error goes up."""
    files: list[Path] = []
    resources = 0
    stopped = False

    def take(written: list[tuple[Path, int]]) -> bool:
        nonlocal resources
        for path, count in written:
            files.append(path)
            resources += count
        return progress is None or progress(len(files), total) is not False

    if workers <= 1:
        for batch in batches:
            for snapshot in batch:
                if not take(write_bundles(context, [snapshot], folder)):
                    return WrittenBundles(tuple(files), resources, len(files) < total)
        return WrittenBundles(tuple(files), resources, False)

    chunk = chunk or CHUNK
    spawn = multiprocessing.get_context("spawn")
    pending: set[Future[list[tuple[Path, int]]]] = set()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=spawn,
                               initializer=_leave_interrupts_to_the_parent)
    try:
        for batch in batches:
            for start in range(0, len(batch), chunk):
                while len(pending) >= workers * _QUEUE_PER_WORKER and not stopped:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        stopped = not take(future.result()) or stopped
                if stopped:
                    break
                job = list(batch[start : start + chunk])
                pending.add(pool.submit(write_bundles, context, job, folder))
            if stopped:
                break
        if stopped:
            for future in pending:
                future.cancel()  # not started yet: dropped; those under way finish whole
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                if not future.cancelled():
                    stopped = not take(future.result()) or stopped
                    if stopped:
                        for waiting in pending:
                            waiting.cancel()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        remove_partial_files(folder)
        raise
    pool.shutdown(wait=True)
    return WrittenBundles(tuple(files), resources, stopped and len(files) < total)

"""Bundles written as files, in this process or on worker processes.

Mapping and validating FHIR models is pure Python work, so a large export (``--all``, the
practice export) builds and writes its bundles on worker processes while this process reads
the next charts from the database. Workers are started with "spawn" (safe beside Qt threads,
and what Windows and macOS use); each is given plain snapshots, never a database session.
"""

from __future__ import annotations

import multiprocessing
import os
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

#: Patients per job sent to a worker; a few jobs wait per worker, so a stop is quick.
CHUNK = 50
_QUEUE_PER_WORKER = 3


@dataclass(frozen=True)
class WrittenBundles:
    files: tuple[Path, ...]
    resources: int
    stopped: bool


def bundle_file_name(mrn: str) -> str:
    return f"{mrn}.fhir.json"


def write_bundle_file(target: Path, data: bytes) -> None:
    """One bundle of a many-patient export as a 0600 file inside the private folder.

    Not synced file by file (50,000 syncs would take minutes): a bundle cut short by a crash
    is simply exported again; the folder is synced once at the end of the export.
    """
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def sync_folder(folder: Path) -> None:
    if hasattr(os, "O_DIRECTORY"):  # POSIX: make the new names durable; Windows has no need
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
) -> WrittenBundles:
    """Write every batch's bundles (on ``workers`` processes when more than 1), in order of
    completion; ``progress(done, total)`` returning False stops after the jobs under way."""
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

    spawn = multiprocessing.get_context("spawn")
    pending: set[Future[list[tuple[Path, int]]]] = set()
    with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
        for batch in batches:
            for start in range(0, len(batch), CHUNK):
                while len(pending) >= workers * _QUEUE_PER_WORKER:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        stopped = not take(future.result()) or stopped
                if stopped:
                    break
                chunk = list(batch[start : start + CHUNK])
                pending.add(pool.submit(write_bundles, context, chunk, folder))
            if stopped:
                break
        for future in pending:
            stopped = not take(future.result()) or stopped
    return WrittenBundles(tuple(files), resources, stopped and len(files) < total)

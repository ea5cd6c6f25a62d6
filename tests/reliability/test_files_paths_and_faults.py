"""Files, paths and faults from issue 16, each performed and required to be refused or worded.

Private files: with a permissive umask (0o022) everything KetaDesk writes is 0600 and every
folder it creates 0700. Paths: a backup over the key file or the -wal, onto a pipe, or over an
existing file is refused with nothing written. Faults: a read-only drive and a full disk are
real small tmpfs mounts (``mount -t tmpfs``, as root; the two tests are skipped where nothing
can be mounted, e.g. an unprivileged container) and must give one plain line, non-zero, and
leave no ``.partial`` behind; a closed pipe, ``--db FOLDER`` and restoring onto itself too.

File only: the files, folders and drives here are a practice file's and its backups'.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from ketadesk.core.csv_safety import spreadsheet_safe
from ketadesk.core.errors import UserFacingError
from ketadesk.crash_report import configure_logging, write_crash_report
from ketadesk.models.audit import AuditEvent
from ketadesk.storage.plans.plan_export import export_plan_to_file
from ketadesk.storage.security import attempts
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.keyslots import KeySlotFile
from ketadesk.storage.security.users import change_own_password
from tests.conftest import ADMIN, PASSWORD, PHYSICIAN, OpenPractice, copy_practice
from tests.reliability._cli_in_process import run_in_process
from tests.reliability.conftest import ROOT, child_env, folder_hashes


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_everything_written_is_private_whatever_the_umask(
    open_umask: None, tmp_path: Path
) -> None:
    path = tmp_path / "made" / "by" / "ketadesk" / "practice.db"
    db, _physician, _ = PracticeDatabase.create(
        path, user_name=PHYSICIAN, full_name="Dr. Rowan Quill", password=PASSWORD
    )
    try:
        for folder in (path.parent, path.parent.parent, path.parent.parent.parent):
            assert _mode(folder) == 0o700, folder
        backup = db.backup_to(tmp_path / "made" / "backups" / "b.db")
        assert _mode(backup.parent) == 0o700
        assert _mode(backup) == 0o600 and _mode(KeySlotFile.path_for(backup)) == 0o600
    finally:
        db.close()
    with pytest.raises(UserFacingError):
        PracticeDatabase.unlock(path, PHYSICIAN, "not the password at all")
    written = [p for p in path.parent.iterdir() if p.is_file()]
    names = {p.name for p in written}
    assert {"practice.db", "practice.db.keys.json", "practice.db.attempts.json",
            "practice.db.attempts.key", "practice.db.attempts.lock"} <= names
    for item in written:  # the database, -wal/-shm if any, key file, attempts ...
        assert _mode(item) == 0o600, item.name
    assert not any(name.endswith(".tmp") for name in names)

    log = configure_logging(tmp_path / "logs" / "deep")
    import logging

    logging.getLogger("ketadesk.test").warning("hello")
    assert _mode(log) == 0o600 and _mode(log.parent) == 0o700
    try:
        raise ValueError("boom")
    except ValueError as error:
        report = write_crash_report(tmp_path / "crashes" / "x", ValueError, error,
                                    error.__traceback__)
    assert _mode(report) == 0o600 and _mode(report.parent) == 0o700


def _backup(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db: Path,
            out: Path, *extra: str) -> tuple[int, str]:
    run = run_in_process(monkeypatch, capsys, db, "backup", "--as", PHYSICIAN,
                         "--password-stdin", "--out", str(out), *extra, stdin=PASSWORD + "\n")
    return run.code, run.err


def test_backups_never_land_on_the_databases_own_files_a_pipe_or_an_existing_file(
    practice: OpenPractice, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    practice.db.close()
    folder = practice.path.parent
    before = folder_hashes(folder)
    own = [KeySlotFile.path_for(practice.path), Path(f"{practice.path}-wal"),
           Path(f"{practice.path}-shm"), practice.path, attempts.attempts_path(practice.path)]
    for target in own:
        code, err = _backup(monkeypatch, capsys, practice.path, target, "--overwrite")
        assert code != 0
        assert len(err.strip().splitlines()) == 1 and "Nothing was written" in err, err
    pipe = folder.parent / "pipe"
    os.mkfifo(pipe)
    code, err = _backup(monkeypatch, capsys, practice.path, pipe, "--overwrite")
    assert code != 0 and "not an ordinary file" in err
    assert stat.S_ISFIFO(pipe.stat().st_mode)
    after = folder_hashes(folder)
    assert {k: v for k, v in after.items() if "attempts" not in k} == {
        k: v for k, v in before.items() if "attempts" not in k
    }

    existing = folder.parent / "existing.db"
    existing.write_bytes(b"keep me")
    code, err = _backup(monkeypatch, capsys, practice.path, existing)
    assert code != 0 and "already exists" in err and "--overwrite" in err
    assert existing.read_bytes() == b"keep me"
    code, err = _backup(monkeypatch, capsys, practice.path, existing, "--overwrite")
    assert code == 0, err
    assert existing.read_bytes() != b"keep me"
    assert not list(folder.parent.glob("*.partial"))


def test_a_plan_is_never_written_onto_a_device_or_a_database_file(
    practice: OpenPractice, tmp_path: Path
) -> None:
    pipe = tmp_path / "plan-pipe"
    os.mkfifo(pipe)
    with pytest.raises(UserFacingError, match="not an ordinary file"):
        export_plan_to_file(practice.db, practice.physician, 1, pipe, overwrite=True)
    with pytest.raises(UserFacingError, match="practice database's own files"):
        export_plan_to_file(practice.db, practice.physician, 1,
                            KeySlotFile.path_for(practice.path), overwrite=True)
    assert stat.S_ISFIFO(pipe.stat().st_mode)


def test_restore_onto_itself_and_a_folder_as_database_are_worded(
    practice: OpenPractice, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    practice.db.close()
    before = folder_hashes(practice.path.parent)
    run = run_in_process(monkeypatch, capsys, practice.path, "restore", str(practice.path),
                         "--as", PHYSICIAN, "--password-stdin", stdin=PASSWORD + "\n")
    assert run.code != 0 and "the practice database itself" in run.err
    assert folder_hashes(practice.path.parent) == before
    run = run_in_process(monkeypatch, capsys, practice.path.parent, "user", "list", "--as",
                         PHYSICIAN, "--password-stdin", stdin=PASSWORD + "\n")
    assert run.code != 0 and "is a folder" in run.err
    assert len(run.err.strip().splitlines()) == 1


def test_csv_cells_that_would_run_as_formulas_are_escaped() -> None:
    rows = [["=HYPERLINK(\"http://x\",\"click\")", "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx",
             "-12", "+3.5", "plain"]]
    buffer = io.StringIO()
    csv.writer(buffer).writerows([[spreadsheet_safe(c) for c in row] for row in rows])
    [cells] = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert all(c.startswith("'") for c in cells[:6]), cells
    assert cells[6:] == ["-12", "+3.5", "plain"]


def test_a_closed_pipe_is_one_plain_line(practice: OpenPractice) -> None:
    practice.db.close()
    from ketadesk.storage.demo.demo_data import populate_demo_patients

    db, _ = PracticeDatabase.unlock(practice.path, PHYSICIAN, PASSWORD)
    with db.session() as session:
        populate_demo_patients(session, 60, entered_by=PHYSICIAN)
    db.close()
    # `roster --json | true`: the reader is gone before the first line is written.
    reader_gone = subprocess.run(
        f"{sys.executable} -m ketadesk --db {practice.path} roster --as {ADMIN} "
        "--password-stdin --json | true",
        shell=True, input=PASSWORD + "\n", capture_output=True, text=True, cwd=ROOT,
        env=child_env(), timeout=120, check=False,
    )
    assert "Traceback" not in reader_gone.stderr, reader_gone.stderr
    lines = reader_gone.stderr.strip().splitlines()
    assert len(lines) <= 1, reader_gone.stderr
    if lines:
        assert lines[0] == "ketadesk: the output was closed before everything was written."


# --- real read-only and full drives (small tmpfs mounts) ------------------------------------


@contextlib.contextmanager
def _mounted(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                           str(where)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root, or no mount permission)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def test_a_read_only_drive_is_named_for_what_it_is(
    prepared_practice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with _mounted(tmp_path / "ro", "4m") as drive:
        path = copy_practice(prepared_practice, drive / "practice")
        subprocess.run(["mount", "-o", "remount,ro", str(drive)], check=True)
        before = folder_hashes(drive)
        for password in (PASSWORD, "a wrong password here"):
            run = run_in_process(monkeypatch, capsys, path, "user", "list", "--as", PHYSICIAN,
                                 "--password-stdin", stdin=password + "\n")
            assert run.code != 0
            [line] = run.err.strip().splitlines()
            assert "read-only drive" in line, line
            assert "another database" not in line and "restore" not in line.lower()
        assert folder_hashes(drive) == before


def test_a_full_disk_leaves_nothing_half_done(
    prepared_practice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = copy_practice(prepared_practice, tmp_path / "db")
    with _mounted(tmp_path / "full", "64k") as drive:
        code, err = _backup(monkeypatch, capsys, path, drive / "backup.db")
        assert code != 0
        [line] = err.strip().splitlines()
        assert "disk is full" in line, line
        assert not list(drive.iterdir()), list(drive.iterdir())  # no .partial, no key file

    # The database itself on a drive that fills up while it is open: a password change must
    # not happen without its audit event, and nothing half-written may stay behind.
    with _mounted(tmp_path / "nearly", "2m") as drive:
        path = copy_practice(prepared_practice, drive / "p")
        db, outcome = PracticeDatabase.unlock(path, ADMIN, PASSWORD)
        keys_before = KeySlotFile.path_for(path).read_bytes()
        filler = drive / "filler"
        descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        with contextlib.suppress(OSError):
            while True:
                os.write(descriptor, b"\0" * 4096)
        os.close(descriptor)
        with pytest.raises(UserFacingError) as refused:
            change_own_password(db, outcome.actor, PASSWORD, "lantern harbor ninety seven")
        assert "disk is full" in refused.value.message
        assert KeySlotFile.path_for(path).read_bytes() == keys_before  # password unchanged
        filler.unlink()
        db.close()
        db, _ = PracticeDatabase.unlock(path, ADMIN, PASSWORD)  # the old password still works
        try:
            with db.session() as session:
                changed = session.execute(
                    select(AuditEvent).where(AuditEvent.action == "password_changed")
                ).scalars().all()
        finally:
            db.close()
        assert changed == []
        assert not [p for p in path.parent.iterdir() if p.name.endswith((".partial", ".tmp"))]

"""A flipped byte anywhere in the database (or a backup) is caught when it is opened.

Opening must refuse with a plain message that names the newest good backup, never show a
traceback, and never write to the damaged file (every file in the folder is hashed before and
after). Trials: ``KETADESK_DAMAGE_TRIALS`` random offsets (default 60).

File only: damaged pages are the encrypted file's (SQLCipher's page check).
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from ketadesk.core.errors import UserFacingError
from ketadesk.storage.security.database import (
    DatabaseDamagedError,
    PracticeDatabase,
    backups_dir,
    newest_good_backup,
)
from ketadesk.storage.security.keyslots import KeySlotFile
from tests.conftest import PASSWORD, PHYSICIAN
from tests.e2e.cli_runner import run_ketadesk
from tests.reliability.conftest import changed_files, folder_hashes, record_figure

TRIALS = int(os.environ.get("KETADESK_DAMAGE_TRIALS", "60"))
PAGE = 4096
DAMAGED = "The practice database is damaged"
pytestmark = pytest.mark.slow


def _practice_with_backup(source: Path, folder: Path) -> tuple[Path, Path]:
    """A copy of ``source`` in ``folder`` with one good backup in its backups folder."""
    folder.mkdir(parents=True)
    path = folder / source.name
    shutil.copy2(source, path)
    shutil.copy2(KeySlotFile.path_for(source), KeySlotFile.path_for(path))
    db, _outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    backup = db.backup_to(backups_dir(path) / "practice-20261124.db")
    db.close()
    assert newest_good_backup(path) == backup
    return path, backup


def _flip(path: Path, offset: int, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= rng.randrange(1, 256)
    path.write_bytes(bytes(data))


def _assert_clear(error: UserFacingError) -> None:
    assert error.message.strip()
    assert "\n" not in error.message
    assert "Traceback" not in error.message
    assert "sqlcipher" not in error.message.lower()


@pytest.fixture
def damaged_setup(demo_practice_files: Path, tmp_path: Path) -> tuple[Path, Path, bytes]:
    path, backup = _practice_with_backup(demo_practice_files, tmp_path / "practice")
    key = KeySlotFile.load(path).unwrap_for_user(PHYSICIAN, PASSWORD)
    return path, backup, key


def test_single_byte_flips_anywhere_are_detected_at_open(damaged_setup) -> None:
    path, backup, key = damaged_setup
    pristine = path.read_bytes()
    slots = KeySlotFile.load(path)
    rng = random.Random(int(os.environ.get("KETADESK_DAMAGE_SEED", "20261125")))
    offsets = [rng.randrange(len(pristine)) for _ in range(TRIALS)]
    named_backup = 0
    for offset in offsets:
        path.write_bytes(pristine)
        _flip(path, offset, rng)
        before = folder_hashes(path.parent)
        with pytest.raises(UserFacingError) as caught:
            PracticeDatabase.open_with_key(path, key, slots).close()
        _assert_clear(caught.value)
        assert "damaged" in caught.value.message
        assert "backup" in caught.value.message
        assert changed_files(before, folder_hashes(path.parent)) == set(), f"offset {offset}"
        if caught.value.message.startswith(DAMAGED) and str(backup) in caught.value.message:
            named_backup += 1
    # Every flip is refused with the plain "damaged ... newest backup is X" wording, including
    # damage in the first pages, which fails the key check before the page check runs.
    record_figure(
        "damage_detection",
        trials=TRIALS,
        detected=TRIALS,
        named_newest_backup=named_backup,
        file_bytes=len(pristine),
    )
    assert named_backup == TRIALS


def test_damage_found_without_reading_the_damaged_page(damaged_setup) -> None:
    """The last page is never needed to list tables, yet opening refuses it."""
    path, backup, _key = damaged_setup
    size = path.stat().st_size
    _flip(path, size - PAGE // 2, random.Random(3))
    before = folder_hashes(path.parent)
    with pytest.raises(DatabaseDamagedError) as caught:
        PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    assert caught.value.message.startswith(DAMAGED)
    assert str(backup) in caught.value.message
    assert changed_files(before, folder_hashes(path.parent)) == set()


def test_cli_reports_damage_in_one_line_and_changes_nothing(damaged_setup) -> None:
    path, backup, _key = damaged_setup
    _flip(path, path.stat().st_size // 2 + 100, random.Random(5))
    before = folder_hashes(path.parent)
    result = run_ketadesk("--db", str(path), "user", "list", "--as", PHYSICIAN,
                          "--password-stdin", stdin=PASSWORD + "\n")
    assert result.returncode == DatabaseDamagedError.exit_code
    assert "Traceback" not in result.stderr
    ours = result.stderr.splitlines()
    assert len(ours) == 1
    assert ours[0].startswith(f"ketadesk: {DAMAGED}")
    assert str(backup) in ours[0]
    assert result.stdout == ""
    assert changed_files(before, folder_hashes(path.parent)) == set()


def test_cli_stderr_is_exactly_one_line_for_damage(damaged_setup) -> None:
    path, _backup, _key = damaged_setup
    _flip(path, 1000, random.Random(5))  # page 1: SQLCipher logs its failed HMAC check
    result = run_ketadesk("--db", str(path), "user", "list", "--as", PHYSICIAN,
                          "--password-stdin", stdin=PASSWORD + "\n")
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1, result.stderr


def test_damage_in_the_first_page_names_the_newest_backup(damaged_setup) -> None:
    path, backup, _key = damaged_setup
    _flip(path, 1000, random.Random(7))
    with pytest.raises(UserFacingError) as caught:
        PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    assert caught.value.message.startswith(DAMAGED)
    assert str(backup) in caught.value.message


def test_damaged_backups_are_detected(damaged_setup) -> None:
    _path, backup, key = damaged_setup
    pristine = backup.read_bytes()
    slots = KeySlotFile.load(backup)
    rng = random.Random(11)
    trials = max(10, TRIALS // 4)
    for _ in range(trials):
        backup.write_bytes(pristine)
        _flip(backup, rng.randrange(len(pristine)), rng)
        before = folder_hashes(backup.parent)
        with pytest.raises(UserFacingError) as caught:
            PracticeDatabase.open_with_key(backup, key, slots).close()
        _assert_clear(caught.value)
        assert "damaged" in caught.value.message
        assert changed_files(before, folder_hashes(backup.parent)) == set()
    record_figure("backup_damage_detection", trials=trials, detected=trials)


def test_restore_refuses_a_damaged_backup_and_keeps_the_database(damaged_setup) -> None:
    path, backup, _key = damaged_setup
    _flip(backup, backup.stat().st_size - 10, random.Random(13))
    before = folder_hashes(path.parent)
    result = run_ketadesk("--db", str(path), "restore", str(backup), "--as", PHYSICIAN,
                          "--password-stdin", stdin=PASSWORD + "\n")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "damaged" in result.stderr
    assert changed_files(before, folder_hashes(path.parent)) == set()

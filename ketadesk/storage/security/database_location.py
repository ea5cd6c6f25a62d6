"""Is the practice database somewhere KetaDesk can use it? Checked before any key is tried,
so a read-only drive or a folder given as the database is named for what it is (never as a
wrong key or damage, whose advice - restore a backup - would be dangerous here)."""

from __future__ import annotations

import os
from pathlib import Path

from ketadesk.core.errors import UserFacingError


def check_database_location(db_path: Path) -> None:
    """Raise a plain-words error when ``db_path`` is a folder, not an ordinary file, or on a
    drive or in a folder KetaDesk may not write to (SQLite writes beside the database)."""
    db_path = Path(db_path)
    if db_path.is_dir():
        raise UserFacingError(
            f"{db_path} is a folder, not a practice database; give the database file inside it."
        )
    if db_path.exists() and not db_path.is_file():
        raise UserFacingError(f"{db_path} is not an ordinary file; it is not a practice database.")
    folder = db_path.parent
    if not os.access(db_path, os.W_OK) or not os.access(folder, os.W_OK):
        raise UserFacingError(
            "The practice database is on a read-only drive or in a folder you may not write "
            "to; KetaDesk needs to write beside it. Nothing was opened or changed. Check the "
            "drive (write protection, a full or failing disk) or copy the database folder to "
            "a writable place."
        )


def is_disk_full(error: BaseException) -> bool:
    """True for SQLite's (and SQLCipher's) "database or disk is full" and ENOSPC."""
    text = str(error).lower()
    return "disk is full" in text or "no space left" in text or getattr(error, "errno", 0) == 28


DISK_FULL = (
    "The disk is full, so nothing was saved (the practice database is unchanged). Free some "
    "space and try again."
)

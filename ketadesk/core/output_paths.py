"""Where KetaDesk may write a file the user named (a backup, an exported plan, an audit CSV).

Never over the practice database's own files (the database, its -wal/-shm/-journal, the key
file, the failed-attempts record), never onto a device, pipe or folder, and never over an
existing file unless the user said so (``--overwrite``). The write itself goes to a unique
temp name in the target folder and is renamed into place (``core.private_files``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ketadesk.core.errors import UserFacingError
from ketadesk.core.private_files import is_regular_or_absent, make_private_folder

#: Files SQLite and KetaDesk keep beside a practice database, as suffixes of its path.
DATABASE_SIDE_SUFFIXES = (
    "",
    "-wal",
    "-shm",
    "-journal",
    ".keys.json",
    ".keys.json.tmp",
    ".attempts.json",
    ".attempts.key",
    ".attempts.lock",
)
_OWN_ENDINGS = tuple(s for s in DATABASE_SIDE_SUFFIXES if s)


def database_side_files(db_path: Path) -> list[Path]:
    """The database and every file kept beside it."""
    return [Path(f"{db_path}{suffix}") for suffix in DATABASE_SIDE_SUFFIXES]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_output_path(
    target: Path,
    *,
    protected_databases: Iterable[Path] = (),
    overwrite: bool = False,
    what: str = "file",
    make_folder: bool = False,
    is_side_file: bool = False,
) -> Path:
    """Return ``target`` (user-expanded) when KetaDesk may write it; else raise in words.

    With ``make_folder`` a missing folder is created (0700) instead of refused;
    ``is_side_file`` is for a backup's own key file, which is named like one."""
    target = Path(target).expanduser()
    for db_path in protected_databases:
        for own in database_side_files(Path(db_path)):
            if _same_file(target, own):
                raise UserFacingError(
                    f"{target.name} is one of the practice database's own files; choose "
                    f"another name for the {what}. Nothing was written."
                )
    if target.name.endswith(_OWN_ENDINGS) and not is_side_file:
        raise UserFacingError(
            f"A {what} may not be named like a database's own file ({target.name}); choose "
            "another name. Nothing was written."
        )
    if target.is_dir():
        raise UserFacingError(f"{target} is a folder; give a file name for the {what}.")
    if not is_regular_or_absent(target):
        raise UserFacingError(
            f"{target} is not an ordinary file (a device or a pipe); KetaDesk will not write "
            f"the {what} there."
        )
    if make_folder and not target.parent.exists():
        make_private_folder(target.parent)
    if not target.parent.is_dir():
        raise UserFacingError(f"The folder for the {what} ({target.parent}) does not exist.")
    if target.exists() and not overwrite:
        raise UserFacingError(
            f"{target.name} already exists; choose another name, or add --overwrite to "
            "replace it. Nothing was written."
        )
    return target

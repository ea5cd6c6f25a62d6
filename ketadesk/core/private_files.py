"""Files only their owner may read: 0600 files in 0700 folders, whatever the umask.

Everything KetaDesk writes beside a practice database (the database and its -wal/-shm, the key
file, failed attempts, backups, exports, logs, crash reports) goes through these helpers, so a
second account on a shared laptop cannot read it. Writes go to a uniquely named temp file in
the target folder (``mkstemp``: created 0600, never shared between two writers), are flushed
to disk, then renamed over the target, so a reader sees the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700
_POSIX = os.name == "posix"


def make_private_folder(folder: Path) -> Path:
    """Create ``folder`` (and missing parents) as 0700; a folder that already existed is
    left as it is (it may be the user's Documents)."""
    folder = Path(folder)
    missing: list[Path] = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    for created in missing:
        restrict(created, FOLDER_MODE)  # mkdir's mode is filtered by the umask
    return folder


def restrict(path: Path, mode: int = FILE_MODE) -> None:
    """chmod ``path`` to ``mode`` on POSIX systems (a no-op elsewhere, when it is gone, or on
    a read-only file system, where nobody can change it anyway)."""
    if _POSIX:
        with contextlib.suppress(OSError):
            os.chmod(path, mode)


def restrict_database_files(db_path: Path) -> None:
    """0600 on the database and every file SQLite or KetaDesk keeps beside it."""
    for suffix in ("", "-wal", "-shm", "-journal", ".keys.json", ".attempts.json",
                   ".attempts.key", ".attempts.lock"):
        restrict(Path(f"{db_path}{suffix}"))


@contextlib.contextmanager
def private_temp_beside(target: Path) -> Iterator[tuple[int, Path]]:
    """A new 0600 temp file in ``target``'s folder with a unique name: yields (fd, path).
    The temp file is removed if the block fails; on success the caller has renamed it."""
    target = Path(target)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        yield fd, temp
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        temp.unlink(missing_ok=True)
        raise


def write_private_bytes(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically as a 0600 file (temp file, fsync, rename)."""
    target = Path(target)
    with private_temp_beside(target) as (fd, temp):
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)


def is_regular_or_absent(path: Path) -> bool:
    """True when ``path`` does not exist or is an ordinary file (not a device, pipe, socket
    or folder); a symbolic link is judged by what it points to."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return True
    return stat.S_ISREG(mode)


def create_private_empty_file(path: Path) -> None:
    """Create ``path`` as an empty 0600 file (refusing one that exists), so a database SQLite
    opens there next (and its -wal/-shm, which SQLite gives the same mode) is private."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.close(fd)
    restrict(path)

"""What went wrong with a file, in words a clinician can act on (never a raw ``OSError``)."""

from __future__ import annotations

import errno

_WORDS = {
    errno.ENOSPC: "the disk is full; free some space and try again",
    errno.EDQUOT: "your disk quota is used up; free some space and try again",
    errno.EROFS: "the drive is read-only (write-protected or mounted read-only)",
    errno.EACCES: "permission denied (the file or folder belongs to someone else)",
    errno.EPERM: "permission denied (the file or folder belongs to someone else)",
    errno.ENOENT: "the file or folder does not exist",
    errno.EISDIR: "that is a folder, not a file",
    errno.ENOTDIR: "part of the path is a file, not a folder",
    errno.EEXIST: "a file with that name already exists",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.EIO: "the drive reported an input/output error (it may be failing or unplugged)",
    errno.EFBIG: "the file is too large for this drive",
    errno.EMFILE: "too many files are open; close some programs and try again",
}


def os_error_in_words(error: OSError) -> str:
    """A short phrase (no trailing full stop) for ``error``; never its file contents."""
    if error.errno in _WORDS:
        return _WORDS[error.errno]
    return (error.strerror or type(error).__name__).rstrip(".").lower()

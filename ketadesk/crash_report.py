"""Crash reports and log files that carry no patient data.

``install_crash_hook(report_dir)`` replaces the unhandled-exception hooks (main thread and
worker threads) with one that writes a short report: the exception TYPE, the ``file:line in
function`` frames and the KetaDesk, Python and platform versions. It never writes exception
messages, source lines or local variables: any of them can hold a patient's name or date of
birth. ``configure_logging(log_dir, level)`` writes the app's log file through a filter that
redacts anything that looks like an MRN, a date or an e-mail address, as a second line of
defence behind "never log patient data".
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import platform
import re
import sys
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from ketadesk import APP_NAME, __version__
from ketadesk.core.private_files import make_private_folder, restrict

REPORT_PREFIX = "crash-"
LOG_FILE_NAME = "ketadesk.log"
MAX_CHAINED = 5

ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], object]

_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bKD-?\d{8}\b", re.IGNORECASE), "[MRN]"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[EMAIL]"),
    # ISO dates (1980-02-01) and US dates (02/01/1980, 2/1/80, 02-01-1980)
    (re.compile(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b"), "[DATE]"),
    (re.compile(r"\b\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})\b"), "[DATE]"),
)


def redact(text: str) -> str:
    """``text`` with MRN-, date- and e-mail-looking parts replaced by placeholders."""
    for pattern, placeholder in _REDACTIONS:
        text = pattern.sub(placeholder, text)
    return text


class PhiRedactingFilter(logging.Filter):
    """Redacts MRNs, dates and e-mails from a record's message, arguments and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


# Loggers of libraries that would print SQL parameters or result rows (patient data) at DEBUG.
QUIET_LOGGERS = ("sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "sqlalchemy.orm", "alembic")


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Opens (and after each rotation reopens) the log file as 0600, whatever the umask."""

    def _open(self):  # type: ignore[no-untyped-def]
        if not os.path.exists(self.baseFilename):
            os.close(os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT, 0o600))
        restrict(Path(self.baseFilename))
        return super()._open()


def configure_logging(log_dir: Path, level: int = logging.INFO) -> Path:
    """Log to ``log_dir/ketadesk.log`` (rotating, 1 MB x 3) at ``level``; return the file path.

    Library loggers that echo SQL parameters or rows are held at WARNING whatever ``level`` is.
    """
    log_dir = make_private_folder(Path(log_dir))
    path = log_dir / LOG_FILE_NAME
    handler = _PrivateRotatingFileHandler(
        path, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(PhiRedactingFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_ketadesk_handler", False)]:
        root.removeHandler(old)
        old.close()
    handler._ketadesk_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    return path


def _frames(tb: TracebackType | None) -> list[str]:
    return [
        f"  {_short_path(frame.filename)}:{frame.lineno} in {frame.name}"
        for frame in traceback.extract_tb(tb)
    ]


def _short_path(filename: str) -> str:
    """The path from the ``ketadesk`` package (or the file name): no user or folder names."""
    parts = Path(filename).parts
    for anchor in ("ketadesk", "site-packages"):
        if anchor in parts:
            index = len(parts) - 1 - parts[::-1].index(anchor)
            return "/".join(parts[index:])
    return Path(filename).name


def crash_report_text(
    exc_type: type[BaseException], error: BaseException | None, tb: TracebackType | None
) -> str:
    """The report: types and frames only (no messages, no variables, no source lines)."""
    lines = [
        f"{APP_NAME} {__version__} crash report",
        f"time: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"python: {platform.python_version()} ({platform.python_implementation()})",
        f"platform: {platform.system()} {platform.release()} {platform.machine()}",
        f"thread: {threading.current_thread().name}",
        "",
        f"{_type_name(exc_type)} (the message is left out: it may hold patient data)",
        *_frames(tb),
    ]
    seen: set[int] = set()
    current = error
    for _ in range(MAX_CHAINED):
        if current is None or id(current) in seen:
            break
        seen.add(id(current))
        cause = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
        if cause is None:
            break
        lines += ["", f"caused by {_type_name(type(cause))}", *_frames(cause.__traceback__)]
        current = cause
    return "\n".join(lines) + "\n"


def _type_name(exc_type: type[BaseException]) -> str:
    module = exc_type.__module__
    return exc_type.__qualname__ if module == "builtins" else f"{module}.{exc_type.__qualname__}"


def write_crash_report(
    report_dir: Path,
    exc_type: type[BaseException],
    error: BaseException | None,
    tb: TracebackType | None,
) -> Path:
    """Write one report file (mode 0600) into ``report_dir``; return its path."""
    report_dir = make_private_folder(Path(report_dir))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = report_dir / f"{REPORT_PREFIX}{stamp}-{os.getpid()}.txt"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(crash_report_text(exc_type, error, tb))
    return path


def install_crash_hook(report_dir: Path) -> None:
    """Route unhandled exceptions (any thread) to a crash report and one plain stderr line.

    The default hooks are replaced, not chained: they would print the exception message
    (which may hold patient data) to stderr. KeyboardInterrupt keeps Python's own handling.
    """
    previous = sys.excepthook

    def hook(
        exc_type: type[BaseException], error: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, error, tb)
            return
        try:
            path: Path | str = write_crash_report(report_dir, exc_type, error, tb)
        except OSError:
            path = "(the report could not be written)"
        sys.stderr.write(
            f"{APP_NAME} stopped because of an unexpected {_type_name(exc_type)}. "
            f"A report without patient data was written to {path}\n"
        )

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            hook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook


def default_log_folder() -> Path:
    """Where KetaDesk's redacted log and crash reports go (the user's log folder)."""
    from platformdirs import user_log_dir

    return Path(user_log_dir("KetaDesk", appauthor=False))

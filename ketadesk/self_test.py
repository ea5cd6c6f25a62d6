"""``KetaDesk --self-test``: prove an installed copy (source tree or bundle) works end to end.

Each check prints one line, ``ok   <check>`` or ``FAIL <check>: <plain reason>``; the exit code
is non-zero when any check failed. Everything happens in a temporary folder that is removed
afterwards, even when a check fails, and only synthetic data is used. Qt runs offscreen, so the
self-test works on a machine without a display (CI, a support call over SSH).

The checks are deliberately the parts a bundle most often loses: the SQLCipher extension and
argon2 (encrypted database and key slots), Alembic and its migration scripts (read from disk),
the knowledge base and other resources, reportlab's fonts, keyring's dynamically loaded
backends, and Qt's platform plugins.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pypdf import PdfReader

    from ketadesk.reports.plan_document import PlanDocument

#: Synthetic credentials; the self-test database never leaves its temporary folder.
_USER = "selftest"
_PASSWORD = "self-test passphrase 1"
_WRONG_PASSWORD = "not the passphrase 2"

#: Keyring backends that must be loadable on each platform (module entry-point names).
#: They are imported dynamically, so a bundle without them "finds no backend" silently.
_EXPECTED_KEYRING_BACKENDS = {
    "linux": ("SecretService", "libsecret", "KWallet", "chainer"),
    "darwin": ("macOS", "chainer"),
    "win32": ("Windows", "chainer"),
}


class SelfTestFailure(Exception):
    """A check found something wrong; the message is shown after ``FAIL <check>:``."""


@dataclass(frozen=True)
class CheckOutcome:
    """One check's result: ``detail`` is appended to the ok line (e.g. which backend)."""

    name: str
    passed: bool
    detail: str
    seconds: float


def run_self_test() -> int:
    """Run every check, print one line each, and return 0 when all passed (else 1)."""
    # Forced, not defaulted: the self-test must never open a window on the user's screen.
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    folder = Path(tempfile.mkdtemp(prefix="ketadesk-selftest-"))
    outcomes: list[CheckOutcome] = []
    try:
        for name, check in _checks(folder):
            outcome = _run_check(name, check)
            outcomes.append(outcome)
            print(_line(outcome), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    failed = [o for o in outcomes if not o.passed]
    if folder.exists():
        print(f"FAIL temporary folder removed: {folder} is still there", flush=True)
        return 1
    return 1 if failed else 0


def _line(outcome: CheckOutcome) -> str:
    if outcome.passed:
        suffix = f" ({outcome.detail})" if outcome.detail else ""
        return f"ok   {outcome.name}{suffix}"
    return f"FAIL {outcome.name}: {outcome.detail}"


def _run_check(name: str, check: Callable[[], str]) -> CheckOutcome:
    start = time.perf_counter()
    try:
        detail = check()
    except SelfTestFailure as failure:
        return CheckOutcome(name, False, str(failure), time.perf_counter() - start)
    except Exception as error:  # a crash in one check must not hide the others
        where = traceback.extract_tb(error.__traceback__)[-1]
        reason = f"{type(error).__name__}: {error} (at {Path(where.filename).name}:{where.lineno})"
        return CheckOutcome(name, False, reason, time.perf_counter() - start)
    return CheckOutcome(name, True, detail, time.perf_counter() - start)


def _checks(folder: Path) -> list[tuple[str, Callable[[], str]]]:
    db_path = folder / "selftest-practice.db"
    return [
        ("resources found", _check_resources),
        ("encrypted database created with a key slot", lambda: _check_create(db_path)),
        ("database file is not plain SQLite", lambda: _check_not_plain(db_path)),
        ("database reopened with the password", lambda: _check_reopen(db_path)),
        ("wrong password refused", lambda: _check_wrong_password(db_path)),
        ("interaction check against the bundled knowledge base", _check_interactions),
        ("protocol calendar computed", _check_calendar),
        ("PDF plan rendered", lambda: _check_pdf(folder)),
        ("PDF plans rendered on worker processes", lambda: _check_pdf_workers(folder)),
        ("keyring backends loadable", _check_keyring),
        ("main window opened and closed", lambda: _check_main_window(db_path)),
    ]


# --- checks ---------------------------------------------------------------------------------
def _check_resources() -> str:
    from ketadesk.resources import resource_path, resources_dir

    for parts in (
        ("kb", "drug_rules.json"),
        ("protocols", "templates.json"),
        ("fonts", "DejaVuSans.ttf"),
        ("icons", "ketadesk.png"),
    ):
        try:
            resource_path(*parts)
        except FileNotFoundError as error:
            raise SelfTestFailure(str(error)) from None
    where = "bundle" if getattr(sys, "frozen", False) else "source tree"
    return f"from the {where}: {resources_dir()}"


def _check_create(db_path: Path) -> str:
    from ketadesk.storage.security.database import PracticeDatabase
    from ketadesk.storage.security.keyslots import KeySlotFile

    db, actor, recovery_key = PracticeDatabase.create(
        db_path, user_name=_USER, full_name="Self Test Physician", password=_PASSWORD
    )
    try:
        with db.session() as session:
            from ketadesk.storage.security.audit_log import verify_audit

            verdict = verify_audit(session)
    finally:
        db.close()
    if not KeySlotFile.path_for(db_path).is_file():
        raise SelfTestFailure("the key slot file was not written beside the database")
    if not recovery_key:
        raise SelfTestFailure("no recovery key was issued")
    if not verdict.is_intact:
        raise SelfTestFailure("the new database's audit chain does not verify")
    return f"user {actor.user_name}, role {actor.role.value}"


def _check_not_plain(db_path: Path) -> str:
    from ketadesk.storage.security.engine import is_plain_sqlite

    if not db_path.is_file():
        raise SelfTestFailure("no database file to inspect (creating it failed)")
    if is_plain_sqlite(db_path):
        raise SelfTestFailure("the file starts with the plain SQLite header: it is NOT encrypted")
    return f"{db_path.stat().st_size} bytes, no SQLite header"


def _check_reopen(db_path: Path) -> str:
    from ketadesk.storage.security.database import PracticeDatabase

    db, outcome = PracticeDatabase.unlock(db_path, _USER, _PASSWORD)
    try:
        if outcome.actor.user_name != _USER:
            raise SelfTestFailure("the database opened as a different user")
        if not outcome.audit.is_intact:
            raise SelfTestFailure("the audit chain does not verify after reopening")
    finally:
        db.close()
    return ""


def _check_wrong_password(db_path: Path) -> str:
    from ketadesk.core.errors import UserFacingError
    from ketadesk.storage.security.database import PracticeDatabase

    before = db_path.read_bytes()
    try:
        db, _ = PracticeDatabase.unlock(db_path, _USER, _WRONG_PASSWORD)
    except UserFacingError:
        if db_path.read_bytes() != before:
            raise SelfTestFailure("a wrong password changed the database file") from None
        return ""
    db.close()
    raise SelfTestFailure("the database opened with a wrong password")


def _check_interactions() -> str:
    from ketadesk.core.interaction_check import check_patient

    result = check_patient(["Ativan 1 mg"], [], None, False)
    lorazepam = [f for f in result.flags if f.drug == "lorazepam"]
    if not lorazepam:
        raise SelfTestFailure("'Ativan 1 mg' (lorazepam, a benzodiazepine) raised no flag")
    if not lorazepam[0].sources:
        raise SelfTestFailure("the lorazepam flag cites no source")
    unknown = check_patient(["zz-not-a-medicine 5 mg"], [], None, False)
    if unknown.unrecognized != ("zz-not-a-medicine 5 mg",):
        raise SelfTestFailure("an unrecognised medication was not reported as not checked")
    return f"knowledge base {result.kb_version}; Ativan 1 mg -> {lorazepam[0].severity} flag"


def _check_calendar() -> str:
    from ketadesk.core.dosing_calendar import dosing_calendar
    from ketadesk.core.protocol_templates import builtin_templates

    templates = builtin_templates()
    if not templates:
        raise SelfTestFailure("no built-in protocol templates were found")
    template = templates[0]
    start = date(2026, 1, 5)
    sessions = dosing_calendar(template.protocol, start, 70.0)
    if not sessions:
        raise SelfTestFailure(f"template '{template.name}' produced an empty calendar")
    days = [s.date for s in sessions]
    if days[0] < start or days != sorted(set(days)):
        raise SelfTestFailure("calendar dates are not strictly increasing from the start date")
    end = start + timedelta(weeks=template.protocol.duration_weeks)
    if days[-1] >= end:
        raise SelfTestFailure("the calendar runs past the protocol's duration")
    return f"'{template.name}': {len(sessions)} sessions over {template.protocol.duration_weeks} wk"


def _check_pdf(folder: Path) -> str:
    import io

    from pypdf import PdfReader

    from ketadesk.reports.plan_pdf import render_plan_pdf

    pdf = render_plan_pdf(_synthetic_plan())
    if not pdf.startswith(b"%PDF-"):
        raise SelfTestFailure("the renderer did not return a PDF")
    (folder / "selftest-plan.pdf").write_bytes(pdf)
    reader = PdfReader(io.BytesIO(pdf))
    text = "".join(page.extract_text() or "" for page in reader.pages)
    if "Selftest" not in text:
        raise SelfTestFailure("the patient's name is missing from the PDF text")
    fonts = _embedded_font_names(reader)
    if not any("DejaVu" in name for name in fonts):
        raise SelfTestFailure("the bundled DejaVu font is not embedded in the PDF")
    return f"{len(reader.pages)} page(s), {len(pdf) // 1024} KiB"


def _check_pdf_workers(folder: Path) -> str:
    """Batch export starts "spawn" workers: in a bundle they only launch when the entry point
    calls multiprocessing.freeze_support(), so this is checked here rather than assumed."""
    from dataclasses import replace

    from ketadesk.reports.plan_batch import PlanJob, render_plan_files

    plan = _synthetic_plan()
    jobs = [
        PlanJob(replace(plan, plan_id=f"SELFTEST-000{n}"), folder / f"selftest-batch-{n}.pdf")
        for n in (1, 2)
    ]
    results = render_plan_files(jobs, workers=2)
    problems = [r.message or r.status.value for r in results if not r.is_written]
    if problems:
        raise SelfTestFailure("; ".join(problems))
    if not all(job.path.read_bytes().startswith(b"%PDF-") for job in jobs):
        raise SelfTestFailure("a worker wrote a file that is not a PDF")
    return f"{len(results)} plans on 2 processes"


def _embedded_font_names(reader: PdfReader) -> set[str]:
    names: set[str] = set()
    for page in reader.pages:
        resources: Any = page.get("/Resources")
        fonts: Any = resources.get_object().get("/Font") if resources is not None else None
        for font in (fonts.get_object() if fonts is not None else {}).values():
            names.add(str(font.get_object().get("/BaseFont", "")))
    return names


def _synthetic_plan() -> PlanDocument:
    from ketadesk.reports.plan_document import (
        CalendarRow,
        MonitoringPlanText,
        PatientBlock,
        PlanDocument,
        PracticeInfo,
        PrescriberBlock,
        ProtocolSummary,
        ReviewSummary,
    )

    start = date(2026, 1, 5)
    rows = tuple(
        CalendarRow(
            day=start + timedelta(days=3 * i),
            dose_mg=50.0,
            mg_per_kg=0.71,
            events=("BP before dose",),
        )
        for i in range(4)
    )
    return PlanDocument(
        plan_id="SELFTEST-0001",
        version=1,
        title="Self-test treatment plan",
        practice=PracticeInfo(name="Self-test Practice", address="1 Test Way", phone="555-0100"),
        patient=PatientBlock(
            full_name="Selftest Synthetic",
            date_of_birth=date(1980, 1, 1),
            mrn="SELFTEST",
            state="FL",
        ),
        prescriber=PrescriberBlock(
            full_name="Self Test Physician", npi="1234567893", licence_states=("FL",)
        ),
        protocol=ProtocolSummary(
            indication="Self-test (synthetic)",
            kind="Standard",
            route="Sublingual",
            formulation="troche",
            strength="50 mg per troche",
            dose_mg=50.0,
            mg_per_kg=0.71,
            weight_kg=70.0,
            weight_date=start,
            frequency="Twice weekly",
            titration_steps=(),
            max_dose_mg=50.0,
            duration="2 weeks",
            supply_per_30_days="8 troches",
            refills=0,
            sig="Synthetic self-test instructions.",
        ),
        calendar=rows,
        calendar_weeks_shown=2,
        monitoring=MonitoringPlanText(lines=("BP before each dose",), hold_parameters=()),
        review=ReviewSummary(flags=(), not_checked=(), reviewed_on=None, signed_by=None),
        signed_by=None,
        signed_at=None,
        is_draft=True,
    )


def _check_keyring() -> str:
    """Every backend keyring loads by entry point must import; report which one is usable.

    Only lists backends: nothing is read from or written to the user's keyring.
    """
    from importlib.metadata import entry_points

    import keyring.backend

    platform = "linux" if sys.platform.startswith("linux") else sys.platform
    expected = _EXPECTED_KEYRING_BACKENDS.get(platform, ("chainer",))
    points = {ep.name: ep for ep in entry_points(group="keyring.backends")}
    missing = [name for name in expected if name not in points]
    if missing:
        raise SelfTestFailure(
            f"keyring's backend list lacks {', '.join(missing)} (package metadata not bundled)"
        )
    for name in expected:
        try:
            points[name].load()
        except Exception as error:
            raise SelfTestFailure(
                f"keyring backend {name} cannot be imported ({type(error).__name__}: {error})"
            ) from None
    usable = [
        ring.name
        for ring in keyring.backend.get_all_keyring()
        if ring.priority > 0 and type(ring).__module__ != "keyring.backends.chainer"
    ]
    listed = ", ".join(sorted(points))
    return f"known: {listed}; usable here: {', '.join(usable) or 'none (headless)'}"


def _check_main_window(db_path: Path) -> str:
    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from ketadesk.resources import resource_path
    from ketadesk.storage.security.database import PracticeDatabase

    app = QApplication.instance() or QApplication([sys.argv[0], "-platform", "offscreen"])
    # Window geometry and other UI state go to the temporary folder, not the user's settings.
    QCoreApplication.setOrganizationName("KetaDesk-self-test")
    QCoreApplication.setApplicationName("KetaDesk-self-test")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(db_path.parent))
    platform = QApplication.platformName()
    icon = QIcon(str(resource_path("icons", "ketadesk.png")))
    if icon.isNull():
        raise SelfTestFailure("the app icon could not be loaded")

    try:
        from ketadesk.ui.main_window import MainWindow
    except ModuleNotFoundError as error:
        if error.name != "ketadesk.ui.main_window":
            raise
        raise SelfTestFailure("this build has no main window (ketadesk.ui.main_window)") from None
    from ketadesk.ui.common.context import AppContext

    db, outcome = PracticeDatabase.unlock(db_path, _USER, _PASSWORD)
    try:
        context = AppContext(db, outcome.actor)
        window = MainWindow(context, outcome.audit)
        window.setWindowIcon(icon)
        window.show()
        app.processEvents()
        shown = window.isVisible()
        title = window.windowTitle()
        window.close()
        app.processEvents()
        closed = not window.isVisible()
        window.deleteLater()
        app.processEvents()
    finally:
        db.close()
    if not shown:
        raise SelfTestFailure("the main window did not show")
    if not closed:
        raise SelfTestFailure("the main window did not close")
    return f"Qt platform {platform}; title '{title}'"


if __name__ == "__main__":
    sys.exit(run_self_test())

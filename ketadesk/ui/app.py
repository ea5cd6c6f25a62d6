"""Starting the desktop app: first-run set-up or log-in, then the main window."""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QDialog

from ketadesk import APP_NAME, __version__
from ketadesk.storage.security.secret_store import KeyringSecretStore, SecretStore
from ketadesk.ui.common.wheel_guard import install_wheel_guard

if TYPE_CHECKING:
    from ketadesk.ui.common.context import AppContext
    from ketadesk.ui.main_window import MainWindow
from ketadesk.ui.session.login_dialog import LoginDialog

log = logging.getLogger(__name__)


def default_database_path() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("KetaDesk", appauthor=False)) / "practice.db"


def create_application(argv: list[str] | None = None) -> QApplication:
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(argv or [APP_NAME])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setApplicationVersion(__version__)
    install_wheel_guard(app)  # before any window: covers every combo, spin and date field
    try:
        from ketadesk.resources import resource_path

        app.setWindowIcon(QIcon(str(resource_path("icons", "ketadesk.png"))))
    except FileNotFoundError:
        pass
    return app


class SessionFlow(QObject):
    """Log in → main window → (log out) → log in again, until the user quits."""

    def __init__(
        self, db_path: Path, secret_store: SecretStore, server_url: str | None = None
    ) -> None:
        super().__init__()
        self.db_path = db_path
        self.server_url = server_url
        self.secret_store = secret_store
        self.window: MainWindow | None = None
        self._prebuilt: MainWindow | None = None  # built while the key is derived

    def start(self) -> bool:
        """Show set-up or log-in; open the main window. False when the user cancels."""
        # The database layers load only after the log-in dialog is on screen.
        from ketadesk.ui.common.context import AppContext

        if not self.db_path.exists() and not self.server_url and not _server_remembered():
            from ketadesk.ui.session.setup_dialog import SetupDialog

            setup = SetupDialog(self.db_path)
            if setup.exec() != QDialog.DialogCode.Accepted or setup.database is None:
                return False
            assert setup.actor is not None
            context = AppContext(setup.database, setup.actor)
            self._open_window(context, None)
            return True
        login = LoginDialog(self.db_path, self.secret_store, server_url=self.server_url)
        self.server_url = None  # after a log-out, the dialog shows what was last chosen
        login.unlock_started.connect(self._prepare_window)
        QTimer.singleShot(0, _start_main_window_preload)  # once the dialog is on screen
        QTimer.singleShot(0, _meet_qt_internal_classes)
        if login.exec() != QDialog.DialogCode.Accepted or login.database is None:
            if self._prebuilt is not None:
                self._prebuilt.deleteLater()
                self._prebuilt = None
            return False
        assert login.actor is not None
        window, self._prebuilt = self._prebuilt, None
        if window is None:
            context = AppContext(login.database, login.actor)
        else:
            context = window.context
            context.attach(login.database, login.actor)
        self._open_window(context, login.audit, window)
        return True

    @property
    def prepared_window(self) -> MainWindow | None:
        """The main window built after Log in while the key is derived, not yet shown."""
        return self._prebuilt

    def _prepare_window(self) -> None:
        """Build the main window on the GUI thread while the key is derived on a worker
        (argon2id holds no GIL), instead of after it: its modules (usually loaded already
        while the user typed; when the preload is still under way this waits for it), its
        widgets, menus, the roster's empty table and remembered sizes. After unlock only
        the database's part is left (``MainWindow.load``). The chart's modules wait until
        the roster is on screen."""
        _chart_preload_allowed.clear()
        from ketadesk.ui.common.context import AppContext
        from ketadesk.ui.main_window import MainWindow

        if self._prebuilt is None:  # a second try after a wrong password reuses it
            self._prebuilt = MainWindow(AppContext())
            # Styles, fonts, layout and the paint path met once, off screen, while the key
            # is derived: the first real paint after unlock finds them ready.
            self._prebuilt.grab()
        # What ``load`` reads before the first paint (the safety alerts' queries), loaded
        # while the key is still derived when the preload had not got to it.
        from ketadesk.ui.main_window import FIRST_READ_MODULES

        for name in FIRST_READ_MODULES:
            importlib.import_module(name)

    def _open_window(
        self, context: AppContext, audit: object, window: MainWindow | None = None
    ) -> None:
        from ketadesk.core.audit_chain import ChainVerdict
        from ketadesk.ui.main_window import MainWindow

        verdict = audit if isinstance(audit, ChainVerdict) else None
        if window is None:
            self.window = MainWindow(context, verdict)
        else:
            self.window = window
            window.load(verdict)
        self.window.logged_out.connect(self._after_logout)
        self.window.show()
        self.window.start_background_checks()
        # The chart's modules load on the preload thread once start-up is over (typing in
        # the search box meanwhile does not share the GIL with them); a chart opened before
        # that loads them itself.
        QTimer.singleShot(CHART_PRELOAD_AFTER_MS, _chart_preload_allowed.set)

    def _after_logout(self) -> None:
        window = self.window
        self.window = None
        logging_out = window is not None and window.is_logging_out
        if not logging_out or not self.start():
            QApplication.quit()


def _server_remembered() -> bool:
    """True when this workstation last logged in to a practice server (QSettings)."""
    from PySide6.QtCore import QSettings

    from ketadesk.ui.session.login_dialog import SERVER_SETTINGS

    chosen = QSettings().value(f"{SERVER_SETTINGS}/chosen", "false")
    return str(chosen).lower() == "true"


CHART_PRELOAD_AFTER_MS = 1500  # after the main window shows: start-up typing is over
# Set while the preload thread may import the chart's modules: while the log-in dialog waits
# for the password, and again once the roster is on screen; cleared while the database is
# unlocked and the main window is built (the GUI thread needs the GIL then).
_chart_preload_allowed = threading.Event()
_chart_preload_allowed.set()
_preload_started = threading.Event()


def _preload_main_window_modules() -> None:
    try:
        from ketadesk.ui.main_window import CHART_MODULES, FIRST_READ_MODULES

        for name in (*FIRST_READ_MODULES, *CHART_MODULES):
            _chart_preload_allowed.wait()  # between modules: no import lock is held
            importlib.import_module(name)
    except Exception as error:  # the GUI thread's own import raises it again, where it is shown
        log.warning("main window preload failed (%s)", type(error).__name__)


def _start_main_window_preload() -> None:
    """Import the main window's modules (≈ 0.5–2 s) on a thread of its own while the log-in
    dialog waits for the user's password, so Log in is followed by the KDF and the log-in
    checks only; then the chart's modules, paused from Log in until the roster is on screen.
    Imports only: no widget is made off the GUI thread. Python's module locks make the GUI
    thread's own import wait for a module still loading here."""
    if "ketadesk.ui.main_window" in sys.modules or _preload_started.is_set():
        return
    _preload_started.set()
    threading.Thread(
        target=_preload_main_window_modules, name="ketadesk-main-window-preload", daemon=True
    ).start()


def _meet_qt_internal_classes() -> None:
    """PySide6 sets up the Python side of Qt's classes lazily. The first event of an object of
    a class Qt keeps to itself (an animation timer, just after the roster's first paint) that
    passes a Python event filter (the wheel guard sees every event) makes it set up every
    class it has not met yet, at once: ≈ 10-15 ms on the GUI thread, landing on the first key
    typed in the search box. Done here instead, while the log-in dialog waits for the
    password: a line edit's own internal objects are met the same way."""
    from PySide6.QtWidgets import QLineEdit

    probe = QLineEdit()
    probe.setClearButtonEnabled(True)
    probe.findChildren(QObject)
    probe.deleteLater()


def run_app(db_path: str | None = None) -> int:
    from ketadesk.crash_report import configure_logging, default_log_folder, install_crash_hook

    logs = default_log_folder()
    configure_logging(logs)
    install_crash_hook(logs / "crash-reports")
    from ketadesk.storage.roster.roster_status import install_status_tracking

    install_status_tracking()  # every write keeps the roster's stored statuses current
    app = create_application(sys.argv[:1])
    # A practice server's address (the dialog checks it); the storage layers load later.
    is_server = bool(db_path) and str(db_path).startswith(("postgresql://", "postgres://"))
    server_url = db_path if is_server else None
    path = Path(db_path).expanduser() if db_path and not server_url else default_database_path()
    flow = SessionFlow(path, KeyringSecretStore(), server_url)
    if not flow.start():
        return 0
    app.setQuitOnLastWindowClosed(False)  # log out closes the window but not the app
    return int(app.exec())

"""Starting the desktop app: first-run set-up or log-in, then the main window."""

from __future__ import annotations

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
        if login.exec() != QDialog.DialogCode.Accepted or login.database is None:
            return False
        assert login.actor is not None
        context = AppContext(login.database, login.actor)
        self._open_window(context, login.audit)
        return True

    @staticmethod
    def _prepare_window() -> None:
        """The main window's modules, loaded on the GUI thread while the key is derived on a
        worker, instead of after it (usually already loaded while the user typed; when the
        preload is still under way this waits for it)."""
        import ketadesk.ui.main_window  # noqa: F401

    def _open_window(self, context: AppContext, audit: object) -> None:
        from ketadesk.core.audit_chain import ChainVerdict
        from ketadesk.ui.main_window import MainWindow

        self.window = MainWindow(context, audit if isinstance(audit, ChainVerdict) else None)
        self.window.logged_out.connect(self._after_logout)
        self.window.show()
        self.window.start_background_checks()

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


def _preload_main_window_modules() -> None:
    try:
        import ketadesk.ui.main_window  # noqa: F401
    except Exception as error:  # the GUI thread's own import raises it again, where it is shown
        log.warning("main window preload failed (%s)", type(error).__name__)


def _start_main_window_preload() -> None:
    """Import the main window's modules (≈ 0.5–2 s) on a thread of its own while the log-in
    dialog waits for the user's password, so Log in is followed by the KDF and the log-in
    checks only. Imports only: no widget is made off the GUI thread. Python's module locks
    make the GUI thread's own import wait for a module still loading here."""
    if "ketadesk.ui.main_window" in sys.modules:
        return
    threading.Thread(
        target=_preload_main_window_modules, name="ketadesk-main-window-preload", daemon=True
    ).start()


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

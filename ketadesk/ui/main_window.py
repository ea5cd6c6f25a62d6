"""The main window: composes the roster, patient charts, admin screens and the lock screen."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ketadesk import APP_NAME
from ketadesk.core import audit_actions
from ketadesk.core.audit_chain import ChainVerdict
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission
from ketadesk.storage.practice.settings_store import get_setting
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.visit_pack_identity import (
    VisitPackIdentity,
    refuse_in_visit_pack,
)
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.live_updates import ChangeBatch, LiveUpdates
from ketadesk.ui.common.ops import OpRunner
from ketadesk.ui.interchange.interchange_menu import InterchangeActions
from ketadesk.ui.roster.roster_view import RosterView
from ketadesk.ui.roster.safety_banner import SafetyBanner
from ketadesk.ui.session.idle_watcher import IdleWatcher
from ketadesk.ui.session.lock_screen import LockScreen

if TYPE_CHECKING:
    from ketadesk.ui.chart.patient_chart import PatientChart

log = logging.getLogger(__name__)

# The chart and its feature tabs (≈ 0.5 s of imports): not needed to show the roster, so they
# load when the first chart opens, or before on a thread (``ketadesk.ui.app``) once the
# roster is on screen.
CHART_MODULES = (
    "ketadesk.storage.patients.patients",
    "ketadesk.storage.outcomes.outcomes",
    "ketadesk.storage.compliance.compliance_worklist",
    "ketadesk.ui.chart.patient_chart",
    "ketadesk.ui.review.interaction_review",
    "ketadesk.ui.protocol.protocol_editor",
    "ketadesk.ui.outcomes.checkins_tab",
    "ketadesk.ui.compliance.compliance_tab",
)

# Read by ``load`` before the roster's first paint (the safety banner): loaded while the
# log-in dialog waits, or while the key is derived (``ketadesk.ui.app``).
FIRST_READ_MODULES = ("ketadesk.storage.outcomes.safety_alerts",)
_MAX_CHARTS_AT_ONCE = 8
USER_AT_WORK_MS = 2_000  # the pointer used this recently on the open screen: at work there


class MainWindow(QMainWindow):
    """One window per logged-in session. ``logged_out`` is emitted when the user logs out."""

    logged_out = Signal()
    locked = Signal()
    unlocked = Signal()

    def __init__(self, context: AppContext, audit: ChainVerdict | None = None) -> None:
        """Build the window; with a context that has its database, load it too (``load``).

        The desktop builds it from a context without a database while the key is derived
        (widgets, menus, the roster's empty table, remembered sizes), then calls ``load``
        after unlock: only the first page of the roster and what needs the user is left."""
        super().__init__()
        self.context = context
        self._hidden_windows: list[QWidget] = []
        self._logging_out = False
        self._loaded = False
        self.setWindowTitle(APP_NAME)
        self.stack = QStackedWidget()
        self.workspace = QWidget()
        self.banners = QVBoxLayout()
        self.banners.setContentsMargins(0, 0, 0, 0)
        self.tabs = QTabWidget()
        self.tabs.setTabsClosable(True)
        self.tabs.setDocumentMode(True)
        self.tabs.setAccessibleName("Open screens")
        self.roster = self._build_roster()
        self.tabs.addTab(self.roster, "Roster")
        self.tabs.tabBar().setTabButton(0, self.tabs.tabBar().ButtonPosition.RightSide, None)
        layout = QVBoxLayout(self.workspace)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(self.banners)
        layout.addWidget(self.tabs)
        self.lock_screen = LockScreen()
        self.stack.addWidget(self.workspace)
        self.stack.addWidget(self.lock_screen)
        self.setCentralWidget(self.stack)
        self.audit_warning = QLabel()
        self.audit_warning.setWordWrap(True)
        self.audit_warning.setStyleSheet(
            "background: #fff4ce; border: 1px solid #c19c00; padding: 6px;"
        )
        self.audit_warning.hide()
        self.banners.addWidget(self.audit_warning)
        self.visit_pack_bar = self._build_visit_pack_bar()
        self.banners.addWidget(self.visit_pack_bar)
        self.safety_banner = SafetyBanner(context)
        # Appearing (or going) it moves the open screen down (or up): not under the pointer
        # while the user is at work there.
        self.safety_banner.keeps_still = self._user_on_open_screen
        self.banners.addWidget(self.safety_banner)
        self._build_menus()
        self._restore_geometry()
        self._connect_signals()
        self.audit_status = QLabel()
        self.audit_status.setAccessibleName("Audit trail check")
        self.statusBar().addPermanentWidget(self.audit_status)
        self.damage_notice = QLabel()
        self.damage_notice.setWordWrap(True)
        self.damage_notice.setAccessibleName("Database damaged")
        self.damage_notice.setStyleSheet(
            "background: #fde7e9; border: 1px solid #a40000; padding: 24px; font-size: 14pt;"
        )
        self.stack.addWidget(self.damage_notice)
        # Own runner: the lock screen waits for context.ops, never for these long checks.
        self._checks = OpRunner(self)
        self.live_updates = LiveUpdates(self)  # started on a practice server only (``load``)
        self.live_updates.changes_arrived.connect(self._apply_outside_changes)
        if context.is_attached:
            self.load(audit)

    def load(self, audit: ChainVerdict | None = None) -> None:
        """After unlock (the context has its database and user): the roster's first page,
        the banners, the lock timer, the user's permissions and name. Once."""
        if self._loaded:
            return
        self._loaded = True
        context = self.context
        self.roster.load()  # first: the rest waits on the GUI thread behind the first page
        self.setWindowTitle(f"{APP_NAME} — {context.actor.full_name}")
        self._show_visit_pack(self.context.db.visit_pack)
        # The safety alerts before the first paint (a few ms; the queries' module is loaded
        # while the key is derived): an alert is on screen with the roster, and the banner
        # never drops in a moment later, moving the rows under the user's mouse and keys.
        self.safety_banner.read_now()
        if audit is not None and not audit.is_intact and context.actor.can_manage_users:
            self.show_audit_warning(audit)
        with context.db.read_session() as session:
            minutes = int(get_setting(session, "auto_lock_minutes"))
        self.idle = IdleWatcher(minutes * 60_000, self)
        self.idle.idle_timed_out.connect(self.lock)
        self._apply_permissions()
        self.interchange.update_enabled()
        self.live_updates.start(context.db)
        self.statusBar().showMessage(
            f"Logged in as {context.actor.full_name} ({context.actor.role})"
        )

    def _user_on_open_screen(self) -> bool:
        """True while the pointer is on the open screen (roster or chart) and the user has
        moved or clicked it in the last ``USER_AT_WORK_MS``: a pointer left resting there,
        or keys typed, do not keep a safety alert back."""
        if not (self._loaded and self.isVisible() and self.tabs.underMouse()):
            return False
        since = self.idle.ms_since_pointer_used()
        return since is not None and since < USER_AT_WORK_MS

    # --- construction -----------------------------------------------------------------------
    def _build_visit_pack_bar(self) -> QLabel:
        """On a visit pack: what it is, who took it and until when (hidden on a practice)."""
        bar = QLabel()
        bar.setAccessibleName("Visit pack")
        bar.setWordWrap(True)
        bar.setStyleSheet("background: #e5f1fb; border: 1px solid #0063b1; padding: 6px;")
        bar.hide()
        return bar

    def _show_visit_pack(self, pack: VisitPackIdentity | None) -> None:
        if pack is None:
            return
        words = pack.describe()
        self.visit_pack_bar.setText(
            f"{words[0].upper()}{words[1:]}. Everything recorded here goes back to the "
            "practice when the pack is returned there."
        )
        self.visit_pack_bar.show()

    def _build_roster(self) -> RosterView:
        return RosterView(self.context)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.new_patient_action = QAction("&New patient", self, shortcut=QKeySequence("Ctrl+N"))
        self.import_action = QAction("&Import patients from a CSV file…", self)
        file_menu.addAction(self.new_patient_action)
        file_menu.addAction(self.import_action)
        file_menu.addSeparator()
        plans_menu = bar.addMenu("P&lans")
        self.export_current_action = QAction(
            "Export the plan for this &patient…", self, shortcut=QKeySequence("Ctrl+P")
        )
        self.export_selected_action = QAction(
            "Export plans for the &selected roster patient…", self
        )
        self.export_all_action = QAction("Export &all signed plans…", self)
        self.preview_draft_action = QAction("Preview this patient's &draft plan…", self)
        for action in (
            self.export_current_action,
            self.export_selected_action,
            self.export_all_action,
            self.preview_draft_action,
        ):
            plans_menu.addAction(action)
        self.lock_action = QAction("&Lock screen", self, shortcut=QKeySequence("Ctrl+L"))
        self.switch_action = QAction("S&witch user…", self)
        self.logout_action = QAction("Log &out", self)
        self.quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        for action in (self.lock_action, self.switch_action, self.logout_action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        self.practice_menu = bar.addMenu("&Practice")
        self.password_action = QAction("Change my &password…", self)
        self.users_action = QAction("&Users…", self)
        self.audit_action = QAction("&Audit log…", self)
        self.settings_action = QAction("Practice &settings…", self)
        self.limits_action = QAction("Practice &limits for protocols…", self)
        self.templates_action = QAction("Protocol &templates…", self)
        self.credentials_action = QAction("Licences and &DEA registrations…", self)
        self.worklist_action = QAction("&Compliance worklist…", self)
        self.consent_texts_action = QAction("Informed &consent texts…", self)
        self.visit_checkout_action = QAction("Check out for a home &visit…", self)
        self.visit_conflicts_action = QAction("Visit co&nflicts to review…", self)
        self.visit_return_action = QAction("&Return a visit pack…", self)
        self.visit_leases_action = QAction("Visit packs &out…", self)
        for action in (
            self.password_action,
            self.users_action,
            self.audit_action,
            self.settings_action,
            self.limits_action,
            self.templates_action,
            self.credentials_action,
            self.worklist_action,
            self.consent_texts_action,
        ):
            self.practice_menu.addAction(action)
        self.practice_menu.addSeparator()
        self.practice_menu.addAction(self.visit_checkout_action)
        self.practice_menu.addAction(self.visit_return_action)
        self.practice_menu.addAction(self.visit_conflicts_action)
        self.practice_menu.addAction(self.visit_leases_action)
        self.interchange = InterchangeActions(self)

    def _connect_signals(self) -> None:
        self.lock_action.triggered.connect(self.lock)
        self.switch_action.triggered.connect(self._switch_user)
        self.logout_action.triggered.connect(self.log_out)
        self.quit_action.triggered.connect(self.close)
        self.users_action.triggered.connect(self._open_users)
        self.audit_action.triggered.connect(self._open_audit)
        self.settings_action.triggered.connect(self._open_settings)
        self.limits_action.triggered.connect(self._open_limits)
        self.templates_action.triggered.connect(self._open_templates)
        self.credentials_action.triggered.connect(self._open_credentials)
        self.worklist_action.triggered.connect(lambda: self.save_compliance_worklist())
        self.consent_texts_action.triggered.connect(self._open_consent_texts)
        self.visit_checkout_action.triggered.connect(lambda: self.check_out_for_visit())
        self.visit_conflicts_action.triggered.connect(lambda: self.open_visit_conflicts())
        self.visit_return_action.triggered.connect(lambda: self.return_visit_pack())
        self.visit_leases_action.triggered.connect(lambda: self.open_visit_leases())
        self.new_patient_action.triggered.connect(self.new_patient)
        self.import_action.triggered.connect(self._import_patients)
        self.export_current_action.triggered.connect(self._export_current)
        self.export_selected_action.triggered.connect(self._export_selected)
        self.export_all_action.triggered.connect(self._export_all)
        self.preview_draft_action.triggered.connect(self._preview_draft)
        self.tabs.currentChanged.connect(self._update_plan_actions)
        self.roster.patient_opened.connect(self.open_patient)
        self.roster.new_patient_requested.connect(self.new_patient)
        self.safety_banner.patients_requested.connect(self._open_alert_patients)
        self.password_action.triggered.connect(self._change_password)
        self.lock_screen.unlock_requested.connect(self._unlock)
        self.tabs.tabCloseRequested.connect(self._close_tab)
        self.context.actor_changed.connect(self._apply_permissions)
        self.context.data_changed.connect(self._on_data_changed)

    def _apply_permissions(self) -> None:
        actor = self.context.actor
        manages = actor.can(Permission.MANAGE_USERS)
        # On a visit pack, what needs the whole practice is not offered (as the commands
        # refuse it there): users, importing patients, checking out, returning, conflicts
        # and the packs out.
        at_practice = not self.is_visit_pack
        self.users_action.setVisible(manages and at_practice)
        self.import_action.setVisible(at_practice)
        self.import_action.setEnabled(actor.can(Permission.EDIT_DEMOGRAPHICS))
        # Packs leave from and come back to a practice file or a practice server alike.
        self.visit_checkout_action.setVisible(at_practice)
        self.visit_conflicts_action.setVisible(at_practice)
        self.visit_return_action.setVisible(at_practice)
        self.visit_leases_action.setVisible(at_practice)
        self._update_plan_actions()
        self.audit_action.setVisible(manages)
        self.credentials_action.setVisible(manages or actor.is_physician)
        self.setWindowTitle(f"{APP_NAME} — {actor.full_name}")

    def _on_data_changed(self, what: str) -> None:
        if what == "settings" and self._loaded:
            with self.context.db.session() as session:
                minutes = int(get_setting(session, "auto_lock_minutes"))
            self.idle.set_timeout_ms(minutes * 60_000)

    def _apply_outside_changes(self, batch: ChangeBatch) -> None:
        """Other workstations' changes (live updates on a server): an open chart of a changed
        patient says who changed it and reloads only if nothing is edited there; the roster
        and the safety banner read again."""
        if self.is_locked or self.context.db.is_locked:
            return  # read again at unlock
        charts = {
            getattr(w, "patient_id", None): w
            for w in self.patient_tabs()
            if hasattr(w, "show_outside_change")
        }
        touched = [pid for pid in batch.by_patient if pid in charts]
        for pid in touched:
            note = batch.by_patient[pid]
            charts[pid].show_outside_change(
                note.by_name, note.at, batch.kinds_by_patient.get(pid, frozenset())
            )
        # Each chart's tabs, the roster and the banner answer "patient:<id>" as they do for a
        # change made here; with no chart open, the roster and the banner read once.
        for pid in touched:
            self.context.data_changed.emit(f"patient:{pid}")
        if not touched:
            self.roster.refresh_keeping_selection()
            if batch.touches_alerts:
                self.safety_banner.refresh()
        if batch.is_resync:
            self.statusBar().showMessage(
                "The practice server's connection was lost and made again; the roster and "
                "the alerts were read again.", 10_000
            )

    def show_audit_warning(self, verdict: ChainVerdict) -> None:
        self.audit_warning.setText(
            "⚠ The audit trail failed its integrity check: "
            f"{verdict.describe()}. Someone may have altered the database outside KetaDesk. "
            "Keep this database as it is and contact your security officer."
        )
        self.audit_warning.show()

    # --- checks after log-in ------------------------------------------------------------------
    def start_background_checks(self) -> None:
        """The page check (writes wait for it), then the full audit walk, both off the GUI
        thread: the roster is already on screen while they run."""
        self.audit_status.setText("Checking the database…")
        self._checks.run(
            self.context.db.wait_for_page_check,
            self._pages_checked,
            on_failure=self._page_check_failed,
        )

    @property
    def is_damaged(self) -> bool:
        return self.stack.currentWidget() is self.damage_notice

    def _pages_checked(self, _result: object) -> None:
        self.audit_status.setText("Checking the audit trail…")
        db, actor = self.context.db, self.context.actor
        self._checks.run(
            lambda: db.check_whole_audit_trail(actor),
            self._audit_walked,
            on_failure=self._audit_walk_failed,
        )

    def _page_check_failed(self, error: BaseException) -> None:
        """Damage found after the roster was shown: hide every patient, write nothing."""
        for window in QApplication.topLevelWidgets():
            if window is not self and window.isWindow() and window.isVisible():
                window.hide()
        message = error.message if isinstance(error, UserFacingError) else (
            f"The practice database could not be checked ({type(error).__name__})."
        )
        self.damage_notice.setText(f"⚠ {message}")
        self.stack.setCurrentWidget(self.damage_notice)
        self.menuBar().setEnabled(False)
        self.idle.stop()
        self.audit_status.setText("")
        self.statusBar().showMessage("The database was closed without any change.")
        self.context.ops.closed_for_damage()
        self.context.db.close()  # drops the key; the failed check lets nothing be written

    def _audit_walked(self, verdict: ChainVerdict) -> None:
        if verdict.is_intact:
            self.audit_status.setText(f"Audit trail intact ({verdict.event_count:,} events)")
            return
        self.audit_status.setText("⚠ Audit trail broken")
        if self.context.actor.can_manage_users:
            self.show_audit_warning(verdict)

    def _audit_walk_failed(self, error: BaseException) -> None:
        if self.context.db.is_locked:  # locked or closed while it ran: checked next log-in
            self.audit_status.setText("")
            return
        log.warning("background audit check failed (%s)", type(error).__name__)
        self.audit_status.setText("Audit trail not checked")

    # --- tabs ---------------------------------------------------------------------------------
    def open_tab(self, widget: QWidget, title: str) -> None:
        index = self.tabs.indexOf(widget)
        if index < 0:
            index = self.tabs.addTab(widget, title)
        self.tabs.setCurrentIndex(index)

    def open_patient(self, patient_id: int) -> PatientChart:
        """Open (or bring forward) a patient's chart with every feature's tab."""
        from ketadesk.ui.chart.patient_chart import PatientChart

        for widget in self.patient_tabs():
            if isinstance(widget, PatientChart) and widget.patient_id == patient_id:
                self.tabs.setCurrentWidget(widget)
                return widget
        chart = PatientChart(self.context, patient_id)
        self._attach_feature_tabs(chart, patient_id)
        self._show_chart(chart)
        return chart

    def new_patient(self) -> PatientChart:
        from ketadesk.ui.chart.patient_chart import PatientChart

        chart = PatientChart(self.context, None)
        chart.patient_saved.connect(lambda pid, c=chart: self._first_save(c, pid))
        self._show_chart(chart)
        return chart

    def _show_chart(self, chart: PatientChart) -> None:
        index = self.tabs.addTab(chart, chart.windowTitle())
        self._retitle(chart, chart.windowTitle())  # a long name is shortened from the start
        chart.windowTitleChanged.connect(lambda title, c=chart: self._retitle(c, title))
        self.tabs.setCurrentIndex(index)

    def _retitle(self, chart: QWidget, title: str) -> None:
        index = self.tabs.indexOf(chart)
        if index >= 0:
            self.tabs.setTabText(index, title if len(title) <= 40 else title[:39] + "…")
            self.tabs.setTabToolTip(index, title)

    def _first_save(self, chart: PatientChart, patient_id: int) -> None:
        from ketadesk.ui.review.interaction_review import ReviewScreen

        if chart.findChild(ReviewScreen) is None:
            self._attach_feature_tabs(chart, patient_id)

    def _attach_feature_tabs(self, chart: PatientChart, patient_id: int) -> None:
        from ketadesk.ui.compliance.compliance_tab import ComplianceTab
        from ketadesk.ui.outcomes.checkins_tab import CheckInsTab
        from ketadesk.ui.protocol.protocol_editor import ProtocolEditor
        from ketadesk.ui.review.interaction_review import ReviewScreen

        review = ReviewScreen(self.context, patient_id)
        protocol = ProtocolEditor(self.context, patient_id)
        protocol.practice_limits_requested.connect(self._open_limits)
        checkins = CheckInsTab(self.context, patient_id)
        chart.add_tab("Interaction &review", review)  # Alt+R, T, K, X (see PatientChart)
        chart.add_tab("Pro&tocol", protocol)
        chart.add_tab("Chec&k-ins && outcomes", checkins)
        chart.add_tab("Prescriptions && compliance (&X)", ComplianceTab(self.context, patient_id))

    def _open_alert_patients(self, patient_ids: list[int]) -> None:
        from ketadesk.ui.outcomes.checkins_tab import CheckInsTab

        for patient_id in patient_ids[:_MAX_CHARTS_AT_ONCE]:
            chart = self.open_patient(patient_id)
            for index in range(chart.tabs.count()):
                if isinstance(chart.tabs.widget(index), CheckInsTab):
                    chart.tabs.setCurrentIndex(index)

    def patient_tabs(self) -> list[QWidget]:
        return [self.tabs.widget(i) for i in range(1, self.tabs.count())]

    def _close_tab(self, index: int) -> None:
        if index == 0:
            return
        widget = self.tabs.widget(index)
        may_close = getattr(widget, "may_close", None)
        if may_close is not None and not may_close():
            return
        self.tabs.removeTab(index)
        widget.deleteLater()

    # --- lock, unlock, switch, log out ------------------------------------------------------
    @property
    def is_logging_out(self) -> bool:
        return self._logging_out

    @property
    def is_locked(self) -> bool:
        return self.stack.currentWidget() is self.lock_screen

    def lock(self) -> None:
        if self.is_locked:
            return
        actor = self.context.actor
        self.live_updates.stop()
        self.context.ops.wait_for_done(10_000)
        try:
            self.context.db.lock(actor)  # drops the key even when the audit write fails
        except Exception as error:  # the screen must cover patient data regardless
            log.warning("lock event not recorded (%s)", type(error).__name__)
        self._hidden_windows = [
            w
            for w in QApplication.topLevelWidgets()
            if w is not self and w.isVisible() and w.isWindow()
        ]
        for window in self._hidden_windows:
            window.hide()
        self.lock_screen.show_locked(
            actor.user_name,
            actor.full_name,
            datetime.now().astimezone().strftime("%H:%M"),
            open_charts=len(self.patient_tabs()),
        )
        self.stack.setCurrentWidget(self.lock_screen)
        self.menuBar().setEnabled(False)
        self.statusBar().showMessage("Locked")
        self.locked.emit()

    def _switch_user(self) -> None:
        self.lock()
        self.lock_screen.start_switch_user()

    def _unlock(self, user_name: str, password: str) -> None:
        self.lock_screen.unlock_button.setEnabled(False)
        db = self.context.db

        def done(actor: Actor) -> None:
            self.lock_screen.unlock_button.setEnabled(True)
            if actor.user_name != self.context.actor.user_name:
                for widget in self.patient_tabs():
                    self.tabs.removeTab(self.tabs.indexOf(widget))
                    widget.deleteLater()
                self._hidden_windows = []
            self.context.set_actor(actor)
            if self.live_updates.start(self.context.db):  # what changed while locked
                self.roster.refresh_keeping_selection()
                self.safety_banner.refresh()
            self.stack.setCurrentWidget(self.workspace)
            self.menuBar().setEnabled(True)
            for window in self._hidden_windows:
                window.show()
            self._hidden_windows = []
            self.idle.reset()
            self.statusBar().showMessage(f"Logged in as {actor.full_name} ({actor.role})")
            self.unlocked.emit()

        def failed(error: BaseException) -> None:
            self.lock_screen.unlock_button.setEnabled(True)
            from ketadesk.core.errors import UserFacingError

            self.lock_screen.show_error(
                error.message
                if isinstance(error, UserFacingError)
                else "The database could not be opened."
            )

        self.context.ops.run(lambda: db.unlock_again(user_name, password), done, on_failure=failed)

    def log_out(self) -> None:
        if not self._confirm_close_charts():
            return
        self._logging_out = True
        self.close()

    def _confirm_close_charts(self) -> bool:
        for widget in self.patient_tabs():
            may_close = getattr(widget, "may_close", None)
            if may_close is not None and not may_close():
                return False
        return True

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._loaded:  # built while the key was derived, never used: nothing open
            event.accept()
            return
        if not self.is_locked and not self._logging_out and not self._confirm_close_charts():
            event.ignore()
            return
        self.idle.stop()
        self.live_updates.stop()
        self.context.ops.wait_for_done(10_000)
        db = self.context.db
        if not db.is_locked:
            try:
                with db.session() as session:
                    record_event(session, self.context.actor, audit_actions.LOGOUT)
            except Exception:  # never block closing on the audit write
                pass
        db.close()
        QSettings().setValue("main_window/geometry", self.saveGeometry())
        self._clear_patient_views()  # before the log-in dialog shows over the desk
        self.logged_out.emit()
        event.accept()

    def _clear_patient_views(self) -> None:
        """Take every patient view off the screen and out of the window: charts, the roster,
        the safety banner, open dialogs and previews, and the user's name in the title."""
        self.hide()
        for window in QApplication.topLevelWidgets():
            if window is not self and window.isWindow() and window.isVisible():
                window.hide()
        self._hidden_windows = []
        self.roster.close()  # keeps its column widths
        while self.tabs.count():
            widget = self.tabs.widget(0)
            self.tabs.removeTab(0)
            widget.hide()
            widget.deleteLater()
        self.safety_banner.clear()
        screen = self.lock_screen
        for field in (screen.who, screen.user_edit, screen.switch_note):
            field.clear()
        blank = QWidget()
        self.stack.addWidget(blank)
        self.stack.setCurrentWidget(blank)
        self.setWindowTitle(APP_NAME)
        self.statusBar().clearMessage()

    def _restore_geometry(self) -> None:
        geometry = QSettings().value("main_window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 820)

    # --- admin screens ------------------------------------------------------------------------
    @property
    def is_visit_pack(self) -> bool:
        return self.context.db.visit_pack is not None

    def _refused_in_visit_pack(self, what: str) -> bool:
        """Say so and return True when ``what`` needs the whole practice and this is a pack."""
        pack = self.context.db.visit_pack
        try:
            refuse_in_visit_pack(pack, what)
        except UserFacingError as error:
            QMessageBox.information(self, APP_NAME, error.message)
            return True
        return False

    def _open_users(self) -> None:
        from ketadesk.ui.admin.users_dialog import UsersDialog

        if self._refused_in_visit_pack("Managing users"):
            return
        UsersDialog(self.context, self).exec()

    def _open_audit(self) -> None:
        from ketadesk.ui.admin.audit_viewer import AuditViewer

        self.open_tab(AuditViewer(self.context), "Audit log")

    def _open_settings(self) -> None:
        from ketadesk.ui.admin.settings_dialog import SettingsDialog

        SettingsDialog(self.context, self).exec()

    def _open_credentials(self) -> None:
        from ketadesk.ui.compliance.credentials_dialog import CredentialsDialog

        CredentialsDialog(self.context, self).exec()

    def _open_consent_texts(self) -> None:
        from ketadesk.ui.compliance.consent_templates_dialog import ConsentTemplatesDialog

        ConsentTemplatesDialog(self.context, self).exec()

    def save_compliance_worklist(self, target: Path | None = None) -> None:
        """Save the compliance worklist as a PDF (asking where unless ``target`` is given)."""
        from ketadesk.ui.compliance.compliance_tab import ask_pdf_path, save_worklist_pdf

        target = target or ask_pdf_path(self, "compliance-worklist.pdf")
        if target is not None:
            save_worklist_pdf(self.context, target, self)

    def _import_patients(self) -> None:
        from ketadesk.ui.roster.import_dialog import ImportDialog

        if self._refused_in_visit_pack("Importing patients"):
            return
        ImportDialog(self.context, self).exec()

    # --- home visits ---------------------------------------------------------------------------
    def _visit_choices(self) -> list[object]:
        """The patients to offer: the open chart's, else the roster's selected rows."""
        from ketadesk.ui.visits.checkout_dialog import PatientChoice

        chart = self.current_chart()
        if chart is not None and chart.record is not None:
            d = chart.record.demographics
            return [PatientChoice(chart.record.mrn, f"{d.last_name}, {d.first_name} · "
                                  f"{chart.record.mrn}")]
        model = self.roster.model
        wanted = set(self.roster.selected_patient_ids())
        choices: list[object] = []
        for number in range(model.rowCount()):
            row = model.row_at(number)
            if row is None or row.patient_id not in wanted:
                continue
            words = f"{row.last_name}, {row.first_name} · {row.mrn}"
            marker = model.visit_marker(number)
            if marker is not None:
                words += f" (already on a visit laptop, by {marker.checked_out_by})"
            choices.append(PatientChoice(row.mrn, words))
        return choices

    def check_out_for_visit(self, suggested_path: Path | None = None) -> QWidget | None:
        """Open the check-out dialog for the chosen patients (not on a visit pack)."""
        from ketadesk.ui.visits.checkout_dialog import CheckOutDialog

        if self._refused_in_visit_pack("Checking patients out"):
            return None
        dialog = CheckOutDialog(
            self.context, self._visit_choices(), self,  # type: ignore[arg-type]
            suggested_path=suggested_path,
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def return_visit_pack(self, suggested_path: Path | None = None) -> QWidget | None:
        """Open the return dialog (not on a visit pack); its conflicts button opens the review."""
        from ketadesk.ui.visits.return_dialog import ReturnDialog

        if self._refused_in_visit_pack("Returning a visit pack"):
            return None
        dialog = ReturnDialog(self.context, self, suggested_path=suggested_path)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.conflicts_requested.connect(lambda: self.open_visit_conflicts())
        dialog.open()
        return dialog

    def open_visit_leases(self) -> QWidget | None:
        """The visit packs out, and revoking one (not on a visit pack)."""
        from ketadesk.ui.visits.leases_dialog import LeasesDialog

        if self._refused_in_visit_pack("Revoking a visit pack"):
            return None
        dialog = LeasesDialog(self.context, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def open_visit_conflicts(self) -> QWidget | None:
        """The conflict review tab (one at a time)."""
        from ketadesk.ui.visits.conflict_review import ConflictReview

        if self._refused_in_visit_pack("Reviewing what visit packs brought back"):
            return None
        for widget in self.patient_tabs():
            if isinstance(widget, ConflictReview):
                self.tabs.setCurrentWidget(widget)
                widget.reload()
                return widget
        review = ConflictReview(self.context)
        self.open_tab(review, "Visit conflicts")
        return review

    # --- plans ---------------------------------------------------------------------------------
    def current_chart(self) -> PatientChart | None:
        widget = self.tabs.currentWidget()
        if widget is None or widget is self.roster:  # no chart module loaded to say so
            return None
        from ketadesk.ui.chart.patient_chart import PatientChart

        return widget if isinstance(widget, PatientChart) and widget.patient_id else None

    def _update_plan_actions(self) -> None:
        chart = self.current_chart()
        can_export = self.context.can(Permission.EXPORT_PLANS)
        self.export_current_action.setEnabled(can_export and chart is not None)
        self.export_selected_action.setEnabled(can_export)
        self.export_all_action.setEnabled(can_export)
        self.preview_draft_action.setEnabled(
            chart is not None and self.context.can(Permission.EDIT_CLINICAL)
        )

    # Plan export loads reportlab and pypdf (≈ 0.3–0.5 s): only when a plan is exported.
    def _export_current(self) -> None:
        from ketadesk.ui.plans.plan_export_dialog import PlanExportDialog

        chart = self.current_chart()
        if chart is not None and chart.patient_id is not None:
            PlanExportDialog.for_patient(self.context, chart.patient_id, self).exec()

    def _export_selected(self) -> None:
        from ketadesk.ui.plans.plan_export_dialog import PlanExportDialog

        patient_id = self.roster.selected_patient_id()
        if patient_id is None:
            QMessageBox.information(self, APP_NAME, "Choose a patient on the roster first.")
            return
        PlanExportDialog.for_patients(self.context, [patient_id], self).exec()

    def _export_all(self) -> None:
        from ketadesk.ui.plans.plan_export_dialog import PlanExportDialog

        PlanExportDialog.for_all_signed(self.context, self).exec()

    def _preview_draft(self) -> None:
        from ketadesk.ui.plans.plan_preview import save_and_open_draft_preview

        chart = self.current_chart()
        if chart is not None and chart.patient_id is not None:
            save_and_open_draft_preview(self.context, chart.patient_id, self)

    def _open_limits(self) -> None:
        from ketadesk.ui.admin.practice_limits_page import PracticeLimitsPage

        for widget in self.patient_tabs():  # the menu and the protocol's link share one page
            if isinstance(widget, PracticeLimitsPage):
                self.tabs.setCurrentWidget(widget)
                return
        self.open_tab(PracticeLimitsPage(self.context), "Practice limits")

    def _open_templates(self) -> None:
        from ketadesk.ui.protocol.template_manager import TemplateManager

        self.open_tab(TemplateManager(self.context), "Protocol templates")

    def _change_password(self) -> None:
        from ketadesk.ui.admin.users_dialog import ChangePasswordDialog

        ChangePasswordDialog(self.context, self).exec()


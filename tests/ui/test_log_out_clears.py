"""Defect 9: logging out takes every patient view off the screen before the log-in dialog shows:
no roster, names, dates of birth, safety alert or the user's name behind the dialog."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt, QTimer
from PySide6.QtWidgets import QAbstractItemView, QApplication, QTabBar, QWidget
from sqlalchemy import select

from ketadesk.models.patients import Patient
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.secret_store import MemorySecretStore
from ketadesk.ui.app import SessionFlow
from ketadesk.ui.session.login_dialog import LoginDialog
from tests.conftest import copy_practice
from tests.ui.conftest import DEMO_PASSWORD, DEMO_PHYSICIAN
from tests.ui.screens import FULL_CHART_PATIENT, open_chart


def texts_in(widget: QWidget) -> list[str]:
    """Every text a widget and its children can show: labels, fields, buttons, tabs, tables."""
    found = [widget.windowTitle(), widget.toolTip()]
    for child in [widget, *widget.findChildren(QWidget)]:
        for name in ("text", "placeholderText", "toolTip", "windowTitle", "toPlainText"):
            getter = getattr(child, name, None)
            if callable(getter):
                try:
                    value = getter()
                except TypeError:
                    continue
                if isinstance(value, str):
                    found.append(value)
        if isinstance(child, QTabBar):
            found += [child.tabText(i) for i in range(child.count())]
        if isinstance(child, QAbstractItemView) and child.model() is not None:
            model = child.model()
            try:
                columns = model.columnCount(QModelIndex())
            except TypeError:  # list models keep columnCount private: one column
                columns = 1
            for row in range(min(model.rowCount(QModelIndex()), 500)):
                for column in range(columns):
                    value = model.index(row, column).data()
                    if value is not None:
                        found.append(str(value))
    return found


def when_login_dialog_shows(act) -> None:
    def attempt() -> None:
        widget = QApplication.activeModalWidget()
        if isinstance(widget, LoginDialog):
            act(widget)
        else:
            QTimer.singleShot(50, attempt)

    QTimer.singleShot(50, attempt)


def test_log_out_clears_every_patient_view_before_the_log_in_dialog(
    qtbot, prepared_demo_practice, tmp_path, monkeypatch
):
    path = copy_practice(prepared_demo_practice, tmp_path / "db")
    db, _ = PracticeDatabase.unlock(path, DEMO_PHYSICIAN, DEMO_PASSWORD)
    with db.session() as session:
        patients = session.execute(select(Patient.first_name, Patient.last_name, Patient.dob))
        names = [(f, last, dob.strftime("%m/%d/%Y")) for f, last, dob in patients]
    db.close()
    monkeypatch.setattr(QApplication, "quit", staticmethod(lambda: None))

    def log_in(dialog: LoginDialog) -> None:
        dialog.user_edit.setText(DEMO_PHYSICIAN)
        dialog.password_edit.setText(DEMO_PASSWORD)
        qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Return)

    flow = SessionFlow(path, MemorySecretStore(available=False))
    when_login_dialog_shows(log_in)
    assert flow.start()
    window = flow.window
    assert window is not None
    full_name = window.context.actor.full_name
    qtbot.waitUntil(lambda: window.roster.model.rowCount() == len(names), timeout=20_000)
    open_chart(qtbot, window, FULL_CHART_PATIENT)
    window.tabs.setCurrentIndex(0)
    before = " ".join(texts_in(window))
    assert any(last in before for _, last, _ in names)  # the check below can fail
    assert full_name in window.windowTitle()

    seen: dict[str, object] = {}

    def look_behind_the_dialog(dialog: LoginDialog) -> None:
        visible = [
            w for w in QApplication.topLevelWidgets()
            if w.isVisible() and w is not dialog and not isinstance(w.window(), LoginDialog)
        ]
        seen["visible windows"] = [type(w).__name__ for w in visible]
        seen["texts"] = " ".join(texts_in(window))
        seen["title"] = window.windowTitle()
        seen["image"] = window.grab()
        dialog.reject()

    when_login_dialog_shows(look_behind_the_dialog)
    window.logout_action.trigger()
    assert seen, "the log-in dialog did not show after log-out"
    assert seen["visible windows"] == []
    texts = str(seen["texts"])
    for first, last, dob in names:
        assert last not in texts and dob not in texts, (first, last)
    assert full_name not in str(seen["title"]) and full_name not in texts
    assert "item 9" not in texts.lower() and "suicide" not in texts.lower()
    window.deleteLater()

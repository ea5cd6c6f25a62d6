"""The "History" side of the protocol editor: a course's versions and a diff of any two.

Versions are listed newest last with signer and time; a discontinued course says when, by whom
and why. Two pickers choose the versions to compare; while the form is editable the second
picker also offers the form as it is now (not saved).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.protocols import Protocol, WeightReading
from ketadesk.storage.protocols import protocols as store
from ketadesk.storage.protocols.protocol_versions import (
    PatientProtocolInfo,
    ProtocolVersionInfo,
)

_FORM_ITEM = "The form (not saved)"
_FORM_ID = -1


class ProtocolHistory(QWidget):
    """The version list, the discontinuation line, and the diff between two chosen versions."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._versions: list[ProtocolVersionInfo] = []
        self._form_protocol: Protocol | None = None
        self._form_start: date | None = None
        self._form_weight: WeightReading | None = None
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Versions (newest last):"))
        self.history_list = QListWidget()
        self.history_list.setMaximumHeight(170)
        layout.addWidget(self.history_list)
        self.course_label = QLabel()
        self.course_label.setWordWrap(True)
        layout.addWidget(self.course_label)
        pick = QHBoxLayout()
        pick.addWidget(QLabel("Compare"))
        self.diff_from = QComboBox()
        self.diff_to = QComboBox()
        pick.addWidget(self.diff_from, 1)
        pick.addWidget(QLabel("with"))
        pick.addWidget(self.diff_to, 1)
        layout.addLayout(pick)
        self.diff_view = QPlainTextEdit()
        self.diff_view.setReadOnly(True)
        self.diff_view.setTabChangesFocus(True)
        layout.addWidget(self.diff_view, 1)
        self._connect_signals()

    def _connect_signals(self) -> None:
        self.diff_from.currentIndexChanged.connect(self._show_diff)
        self.diff_to.currentIndexChanged.connect(self._show_diff)

    def show_history(self, course: PatientProtocolInfo | None, *,
                     offer_form: bool) -> None:
        """List ``course``'s versions and compare the newest two (or the newest with the form,
        offered as "The form (not saved)" when ``offer_form``)."""
        versions = list(course.versions) if course is not None else []
        self._versions = versions
        self.history_list.clear()
        for version in versions:
            item = QListWidgetItem(version.label)
            item.setToolTip(f"Content hash {version.content_hash[:16]}…; first session "
                            f"{version.start_date:%m/%d/%Y}")
            self.history_list.addItem(item)
        if not versions:
            self.history_list.addItem("No saved versions yet.")
        if course is not None and not course.is_active and course.discontinued_at:
            self.course_label.setText(
                f"Discontinued on {course.discontinued_at.astimezone():%m/%d/%Y %H:%M} by "
                f"{course.discontinued_by}. Reason: {course.discontinued_reason}")
        else:
            self.course_label.setText("")
        for combo in (self.diff_from, self.diff_to):
            combo.blockSignals(True)
            combo.clear()
            for version in versions:
                combo.addItem(f"Version {version.number} ({version.status})", version.version_id)
            combo.blockSignals(False)
        if versions and offer_form:
            self.diff_to.addItem(_FORM_ITEM, _FORM_ID)
        if len(versions) >= 2:
            self.diff_from.setCurrentIndex(len(versions) - 2)
            self.diff_to.setCurrentIndex(len(versions) - 1)
        elif versions and self.diff_to.count() > 1:
            self.diff_to.setCurrentIndex(self.diff_to.count() - 1)  # the unsaved form
        self._show_diff()

    def show_form(self, protocol: Protocol | None, start: date | None,
                  weight: WeightReading | None) -> None:
        """The form as it is now; the diff is refreshed when the form is the one compared."""
        self._form_protocol = protocol
        self._form_start = start
        self._form_weight = weight
        if self.diff_to.currentData() == _FORM_ID:
            self._show_diff()

    def show_diff(self, from_number: int, to_number: int) -> str:
        """Select two versions by number and return the diff text shown."""
        for combo, number in ((self.diff_from, from_number), (self.diff_to, to_number)):
            for index in range(combo.count()):
                if combo.itemText(index).startswith(f"Version {number} "):
                    combo.setCurrentIndex(index)
        self._show_diff()
        return self.diff_view.toPlainText()

    def _show_diff(self) -> None:
        listed = self._versions
        versions = {v.version_id: v for v in listed}
        a = versions.get(self.diff_from.currentData())
        b = versions.get(self.diff_to.currentData())
        to_words = f"version {b.number}" if b is not None else ""
        if self.diff_to.currentData() == _FORM_ID and listed and \
                self._form_protocol is not None:
            b = replace(listed[-1], protocol=self._form_protocol,
                        start_date=self._form_start or listed[-1].start_date,
                        weight=self._form_weight)
            to_words = "the form as it is now (not saved)"
        if a is None or b is None:
            self.diff_view.setPlainText("Save at least two versions to compare them.")
            return
        lines = store.version_diff(a, b)
        header = f"Changes from version {a.number} to {to_words}:"
        self.diff_view.setPlainText(
            header + "\n" + ("\n".join(f"• {line}" for line in lines) if lines
                             else "No differences."))

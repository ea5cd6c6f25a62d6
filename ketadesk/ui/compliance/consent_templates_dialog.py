"""The practice's informed-consent texts: every version to read, and a new version added by a
physician. Patients who signed an older version appear on the compliance worklist to consent
again."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Permission
from ketadesk.storage.compliance.compliance_records import ConsentTemplateInfo
from ketadesk.storage.compliance.consent import (
    add_consent_template,
    consent_templates,
    ensure_consent_template,
)
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.dialog_parts import ProblemLabel
from ketadesk.ui.common.qdate_conversion import local_date_text

RECONSENT_NOTE = (
    "Saving a new version asks every patient who signed an older one to consent again "
    "(they appear on the compliance worklist)."
)


def paragraphs_of(text: str) -> list[str]:
    """The paragraphs of ``text``: blocks separated by an empty line, each on one line."""
    blocks = [" ".join(b.split()) for b in text.replace("\r\n", "\n").split("\n\n")]
    return [b for b in blocks if b]


class ConsentTemplatesDialog(QDialog):
    """Read every consent version; physicians may add the next one."""

    loaded = Signal()

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._context = context
        self.templates: tuple[ConsentTemplateInfo, ...] = ()
        self.setWindowTitle("Informed consent texts")
        self.setMinimumSize(820, 560)
        self.versions = QListWidget()
        self.versions.setAccessibleName("Consent versions")
        self.text_view = QPlainTextEdit()
        self.text_view.setReadOnly(True)
        self.text_view.setAccessibleName("Consent text")
        splitter = QSplitter()
        splitter.addWidget(self.versions)
        splitter.addWidget(self.text_view)
        splitter.setSizes([260, 560])
        self.versions.setWordWrap(True)
        self.new_title = QLineEdit()
        self.new_title.setAccessibleName("Title of the new version")
        self.new_title.setPlaceholderText("Title, e.g. Consent to at-home ketamine treatment")
        self.new_text = QPlainTextEdit()
        self.new_text.setAccessibleName("Text of the new version")
        self.new_text.setPlaceholderText("The consent in the practice's words; leave an empty "
                                         "line between paragraphs.")
        self.note = QLabel(RECONSENT_NOTE)
        self.note.setWordWrap(True)
        self.problem = ProblemLabel()
        self.add_button = QPushButton("Save as a new version")
        self.close_button = QPushButton("Close")
        may_add = context.can(Permission.EDIT_CLINICAL)
        for widget in (self.new_title, self.new_text, self.add_button):
            widget.setEnabled(may_add)
            widget.setToolTip("" if may_add else "Only physicians add a version of the consent.")
        if not may_add:
            self.note.setText("Only physicians add a version of the consent.")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 3)
        layout.addWidget(QLabel("New version:"))
        layout.addWidget(self.new_title)
        layout.addWidget(self.new_text, 1)
        layout.addWidget(self.note)
        layout.addWidget(self.problem)
        layout.addLayout(buttons)
        self.add_button.setAutoDefault(False)
        self.close_button.setAutoDefault(False)
        self.versions.currentRowChanged.connect(self._show_version)
        self.add_button.clicked.connect(self.add_version)
        self.close_button.clicked.connect(self.accept)
        self.reload()

    def reload(self) -> None:
        context, actor = self._context, self._context.actor

        def load() -> tuple[ConsentTemplateInfo, ...]:
            with context.db.session() as s:
                if context.can(Permission.PRINT_CONSENT_FORM):
                    ensure_consent_template(s, actor)
                return consent_templates(s)

        context.ops.run(load, self._show, parent_widget=self)

    def _show(self, templates: tuple[ConsentTemplateInfo, ...]) -> None:
        self.templates = tuple(reversed(templates))  # newest (current) first
        self.versions.clear()
        for i, t in enumerate(self.templates):
            state = "current" if i == 0 else "older"
            example = ", example text" if t.is_example else ""
            self.versions.addItem(f"Version {t.version} ({state}{example})\n"
                                  f"added {local_date_text(t.added_at)} by {t.added_by}")
        if self.templates:
            self.versions.setCurrentRow(0)
        self.loaded.emit()

    def _show_version(self, row: int) -> None:
        if not 0 <= row < len(self.templates):
            self.text_view.clear()
            return
        t = self.templates[row]
        notice = f"{t.example_notice}\n\n" if t.is_example and t.example_notice else ""
        self.text_view.setPlainText(f"{t.title}\n\n{notice}" + "\n\n".join(t.paragraphs))

    def add_version(self) -> None:
        title = self.new_title.text().strip()
        paragraphs = paragraphs_of(self.new_text.toPlainText())
        if not title:
            self.problem.say("Give the new version a title.")
            self.new_title.setFocus()
            return
        if not paragraphs:
            self.problem.say("Write the text of the consent.")
            self.new_text.setFocus()
            return
        context, actor = self._context, self._context.actor

        def work() -> ConsentTemplateInfo:
            with context.db.session() as s:
                return add_consent_template(s, actor, title, paragraphs)

        context.ops.run(work, self._added, on_failure=self._failed, changes="settings",
                        parent_widget=self)

    def _added(self, _info: ConsentTemplateInfo) -> None:
        self.problem.hide()
        self.new_title.clear()
        self.new_text.clear()
        self.reload()

    def _failed(self, error: BaseException) -> None:
        if isinstance(error, UserFacingError):
            self.problem.say(error.message)
            return
        raise error

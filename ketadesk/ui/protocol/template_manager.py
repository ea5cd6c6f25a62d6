"""Protocol templates: the built-in examples and the practice's own; confirm, import, export.

Built-in templates hold example values that cannot be signed; "Confirm as practice template"
makes a practice copy whose values count as reviewed. Practice templates can be shared between
workstations as a JSON template file (checked against its schema on import).
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Permission
from ketadesk.core.protocol_templates import ProtocolTemplate, confirm_template
from ketadesk.core.protocols import (
    KIND_LABELS,
    ROUTE_LABELS,
    indication_text,
    ladder_doses_mg,
    number_text,
    sig_text,
)
from ketadesk.storage.practice.practice_templates import (
    all_templates,
    delete_template,
    export_templates_file,
    import_templates_file,
    save_template,
)
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.common.ops import show_error


class TemplateManager(QWidget):
    """Lists templates and manages the practice's own. Takes the AppContext; emits
    ``templates_changed`` after a confirm, import or delete."""

    templates_changed = Signal()

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._templates: tuple[ProtocolTemplate, ...] | None = None
        self._build()
        self._connect_signals()
        self.reload()

    @property
    def is_loaded(self) -> bool:
        return self._templates is not None

    @property
    def templates(self) -> tuple[ProtocolTemplate, ...]:
        return self._templates or ()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Built-in templates hold <b>example values</b>: a protocol made from one cannot be "
            "signed until every value is reviewed. Confirm a template to keep a practice copy "
            "whose values your practice has checked. Share practice templates between "
            "workstations with Export and Import.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.template_list = QListWidget()
        splitter.addWidget(self.template_list)
        self.details = QTextBrowser()
        self.details.setOpenExternalLinks(True)
        splitter.addWidget(self.details)
        splitter.setSizes([340, 700])
        layout.addWidget(splitter, 1)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)
        buttons = QHBoxLayout()
        self.access_label = QLabel()
        self.access_label.setStyleSheet("color: #8a5a00;")
        buttons.addWidget(self.access_label, 1)
        self.confirm_button = QPushButton("Confirm as practice template…")
        self.delete_button = QPushButton("Delete")
        self.import_button = QPushButton("Import…")
        self.export_button = QPushButton("Export practice templates…")
        for button in (self.confirm_button, self.delete_button, self.import_button,
                       self.export_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)

    def _connect_signals(self) -> None:
        self.template_list.currentRowChanged.connect(self._show_selected)
        self.confirm_button.clicked.connect(self._ask_confirm)
        self.delete_button.clicked.connect(self.delete_selected)
        self.import_button.clicked.connect(self._ask_import)
        self.export_button.clicked.connect(self._ask_export)
        self.context.actor_changed.connect(self._apply_access)

    # ------------------------------------------------------------------ data

    def reload(self) -> None:
        def work() -> tuple[ProtocolTemplate, ...]:
            with self.context.db.session() as session:
                return all_templates(session)

        self.context.ops.run(work, self._show, parent_widget=self)

    def _show(self, templates: tuple[ProtocolTemplate, ...]) -> None:
        selected = self.selected()
        self._templates = templates
        self.template_list.clear()
        for template in templates:
            tags = ["built-in" if template.built_in else "practice"]
            if template.example_values:
                tags.append("example values")
            item = QListWidgetItem(f"{template.name}  [{', '.join(tags)}]")
            item.setData(Qt.ItemDataRole.UserRole, template.name)
            self.template_list.addItem(item)
        names = [t.name for t in templates]
        row = names.index(selected.name) if selected is not None and selected.name in names \
            else 0
        self.template_list.setCurrentRow(row if templates else -1)
        self._apply_access()

    def selected(self) -> ProtocolTemplate | None:
        row = self.template_list.currentRow()
        if self._templates is None or not 0 <= row < len(self._templates):
            return None
        return self._templates[row]

    def select(self, name: str) -> None:
        for row, template in enumerate(self.templates):
            if template.name == name:
                self.template_list.setCurrentRow(row)

    def _apply_access(self) -> None:
        can = self.context.can(Permission.EDIT_CLINICAL)
        template = self.selected()
        self.confirm_button.setEnabled(can and template is not None)
        self.delete_button.setEnabled(can and template is not None and not template.built_in)
        self.import_button.setEnabled(can)
        self.export_button.setEnabled(any(not t.built_in for t in self.templates))
        self.access_label.setText("" if can else "Read-only: only physicians change templates.")

    def _show_selected(self, _row: int) -> None:
        self._apply_access()
        template = self.selected()
        if template is None:
            self.details.clear()
            return
        p = template.protocol
        doses = ", ".join(number_text(d) for d in ladder_doses_mg(p.ladder))
        warning = ("<p style='color:#8a5a00'><b>Example values</b> — confirm before use.</p>"
                   if template.example_values else "")
        sources = "".join(
            f"<li><a href=\"{escape(s.url)}\">{escape(s.title)}</a>"
            f"{' — ' + escape(s.note) if s.note else ''}</li>" for s in template.sources)
        self.details.setHtml(
            f"<h3>{escape(template.name)}</h3>{warning}"
            f"<p>{escape(template.description)}</p>"
            f"<p><b>{escape(KIND_LABELS[p.kind])}</b>, {escape(ROUTE_LABELS[p.route])}, "
            f"{escape(p.formulation)} ({number_text(p.strength_mg_per_unit)} mg per "
            f"{escape(p.unit_name)}); indication {escape(indication_text(p))}.<br>"
            f"Ladder {doses} mg, maximum {number_text(p.ladder.max_dose_mg)} mg; "
            f"{p.duration_weeks} weeks.</p>"
            f"<p><b>Sig:</b> {escape(sig_text(p))}</p>"
            + (f"<p><b>Sources</b></p><ul>{sources}</ul>" if sources else ""))

    # ------------------------------------------------------------------ actions

    def _run(self, work: Callable[[], object], done_text: str) -> None:
        def done(_result: object) -> None:
            self._say(done_text)
            self.templates_changed.emit()
            self.reload()

        self.context.ops.run(work, done, on_failure=self._failed, changes="settings",
                             parent_widget=self)

    def _say(self, text: str, *, is_error: bool = False) -> None:
        self.status_label.setStyleSheet("color: #a4161a;" if is_error else "color: #1b5e20;")
        self.status_label.setText(text)

    def _failed(self, error: BaseException) -> None:
        """Expected problems (a bad file, a taken name) are said in the page; others go to
        the one error dialog."""
        if isinstance(error, UserFacingError):
            self._say(error.message, is_error=True)
        else:
            show_error(self, error)

    def _ask_confirm(self) -> None:
        template = self.selected()
        if template is None:
            return
        suggested = template.name if not template.built_in else f"{template.name} (practice)"
        name, ok = QInputDialog.getText(
            self, "Confirm template",
            "You confirm that your practice has reviewed every value of this template.\n"
            "Name of the practice template:", text=suggested)
        if ok:
            self.confirm_selected(name)

    def confirm_selected(self, new_name: str) -> None:
        """Save a confirmed practice copy of the selected template as ``new_name``."""
        template = self.selected()
        if template is None:
            return
        confirmed = confirm_template(template, new_name.strip())
        actor = self.context.actor

        def work() -> ProtocolTemplate:
            with self.context.db.session() as session:
                return save_template(session, actor, confirmed)

        self._run(work, f"Saved \"{new_name.strip()}\".")

    def delete_selected(self) -> None:
        template = self.selected()
        if template is None or template.built_in:
            return
        actor, name = self.context.actor, template.name

        def work() -> None:
            with self.context.db.session() as session:
                delete_template(session, actor, name)

        self._run(work, f"Deleted \"{name}\".")

    def _ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import templates", "",
                                              "KetaDesk templates (*.json)")
        if path:
            self.import_from(Path(path))

    def import_from(self, path: Path) -> None:
        """Import every template in a template file as practice templates."""
        actor = self.context.actor

        def work() -> tuple[ProtocolTemplate, ...]:
            with self.context.db.session() as session:
                return import_templates_file(session, actor, path)

        self._run(work, f"Imported templates from {path.name}.")

    def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export practice templates",
                                              "ketadesk-templates.json",
                                              "KetaDesk templates (*.json)")
        if path:
            self.export_to(Path(path))

    def export_to(self, path: Path) -> None:
        """Write the practice templates to a template file."""

        def work() -> int:
            with self.context.db.session() as session:
                return export_templates_file(session, path)

        def done(count: int) -> None:
            self._say(f"Exported {count} template{'s' if count != 1 else ''} to {path.name}.")

        self.context.ops.run(work, done, on_failure=self._failed, parent_widget=self)

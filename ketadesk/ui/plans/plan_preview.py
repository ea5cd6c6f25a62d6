"""Looking at a plan: open a PDF (or a folder) in the system viewer, and a physician's
watermarked draft preview.

The QtPdf module (``PySide6.QtPdf``, wheel ``pyside6-pdf``) is not installed, so there is no
in-app page view: the plan opens in the system's PDF viewer through ``QDesktopServices``.
Nothing is written to a temporary folder (no patient data in temp files): the physician picks
where the preview is saved.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QWidget

from ketadesk.core.permissions import Permission
from ketadesk.storage.plans.plan_export import export_draft_preview
from ketadesk.ui.common.context import AppContext


def open_in_system_viewer(path: Path) -> bool:
    """Open a PDF file or a folder with the system's default application; False on failure."""
    return bool(QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).resolve()))))


def can_preview_drafts(context: AppContext) -> bool:
    """Only physicians may see a draft plan (watermarked "DRAFT — not for patient use")."""
    return context.can(Permission.EDIT_CLINICAL)


def save_and_open_draft_preview(
    context: AppContext,
    patient_id: int,
    parent: QWidget | None = None,
    *,
    path: Path | None = None,
    open_viewer: bool = True,
) -> None:
    """Render the patient's open draft as a watermarked preview off the GUI thread, save it
    where the physician chooses (asked when ``path`` is None) and open it in the system viewer.
    The preview is audited and never recorded as a plan."""
    if path is None:
        chosen, _filter = QFileDialog.getSaveFileName(
            parent, "Save the draft preview", "draft_plan_preview.pdf", "PDF files (*.pdf)"
        )
        if not chosen:
            return
        path = Path(chosen)
    db, actor, target = context.db, context.actor, path

    def done(written: Path) -> None:
        if open_viewer:
            open_in_system_viewer(written)

    context.ops.run(
        lambda: export_draft_preview(db, actor, patient_id, target), done, parent_widget=parent
    )

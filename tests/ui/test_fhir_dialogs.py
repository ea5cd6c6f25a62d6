"""The FHIR actions of the Practice menu on the demo practice: export with progress and
cancel, and the import wizard's preview (problems, duplicates) before anything is written."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fhir.resources.R4B.bundle import Bundle
from PySide6.QtCore import Qt

SCREENSHOTS = os.environ.get("KETADESK_SCREENSHOTS")


def _save(widget, name: str) -> None:
    if SCREENSHOTS:
        widget.grab().save(str(Path(SCREENSHOTS) / name))


def _patient_count(window) -> int:
    return window.roster.model.rowCount()


def test_export_all_records_writes_one_valid_bundle_per_patient(qtbot, demo_window, tmp_path):
    window = demo_window
    menu_texts = [a.text() for a in window.practice_menu.actions()]
    assert "Export all &records (FHIR)…" in menu_texts
    dialog = window.interchange.export_all()
    qtbot.keyClicks(dialog.folder_edit, str(tmp_path / "fhir"))
    with qtbot.waitSignal(dialog.records_exported, timeout=60_000) as blocker:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    summary = blocker.args[0]
    assert summary.patients == _patient_count(window) and not summary.stopped
    files = sorted((tmp_path / "fhir").iterdir())
    assert len(files) == summary.patients
    for path in files:
        Bundle.model_validate_json(path.read_bytes())
    assert f"Exported {summary.patients:,} patient(s)" in dialog.result_label.text()
    _save(dialog, "fhir-export-done.png")
    dialog.close()


def test_cancel_stops_the_export_and_keeps_complete_files(qtbot, demo_window, tmp_path):
    dialog = demo_window.interchange.export_all()
    dialog.folder_edit.setText(str(tmp_path / "fhir"))
    with qtbot.waitSignal(dialog.records_exported, timeout=60_000) as blocker:
        dialog.start_export()
        dialog.cancel_export()  # as the progress dialog's Cancel button does
    summary = blocker.args[0]
    assert summary.stopped and summary.patients < _patient_count(demo_window)
    assert len(list((tmp_path / "fhir").iterdir())) == summary.patients
    assert "Stopped before the end" in dialog.result_label.text()
    dialog.close()


def test_export_from_the_chart_needs_an_open_chart(qtbot, demo_window, tmp_path):
    window = demo_window
    assert not window.interchange.export_patient_action.isEnabled()
    window.roster.table.setFocus()
    window.roster.table.selectRow(0)
    qtbot.keyClick(window.roster.table, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.current_chart() is not None, timeout=10_000)
    assert window.interchange.export_patient_action.isEnabled()
    dialog = window.interchange.export_current_patient()
    dialog.folder_edit.setText(str(tmp_path / "one"))
    with qtbot.waitSignal(dialog.records_exported, timeout=60_000) as blocker:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0].patients == 1
    dialog.close()


def test_import_wizard_previews_duplicates_and_problems_before_writing(
    qtbot, demo_window, tmp_path
):
    window = demo_window
    export = window.interchange.export_all()
    export.folder_edit.setText(str(tmp_path / "fhir"))
    with qtbot.waitSignal(export.records_exported, timeout=60_000):
        export.start_export()
    export.close()
    # a patient with an issued prescription (the demo issues some)
    one = next(p for p in sorted((tmp_path / "fhir").iterdir())
               if b'"resourceType":"MedicationRequest"' in p.read_bytes())
    before = _patient_count(window)

    wizard = window.interchange.import_records()
    qtbot.keyClicks(wizard.path_edit, str(one))
    qtbot.keyClick(wizard.path_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: wizard.summary_label.text().startswith("Ready"), timeout=30_000)
    texts = [wizard.preview.item(i).text() for i in range(wizard.preview.count())]
    assert any(t.startswith("Possible duplicate of KD-") and t.endswith("; skipped")
               for t in texts)
    assert wizard.summary_label.text().startswith("Ready to import 0 patient(s)")
    assert not wizard.import_button.isEnabled()

    qtbot.mouseClick(wizard.duplicates_box, Qt.MouseButton.LeftButton)
    assert not wizard.import_button.isEnabled()  # the preview must be checked again
    qtbot.mouseClick(wizard.check_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(wizard.import_button.isEnabled, timeout=30_000)
    assert wizard.summary_label.text().startswith("Ready to import 1 patient(s)")
    assert "prescription(s) not imported (prescriptions are issued and signed in KetaDesk)" in (
        wizard.summary_label.text())
    texts = [wizard.preview.item(i).text() for i in range(wizard.preview.count())]
    assert any(t.endswith("resource(s) not imported: prescriptions are issued and signed in "
                          "KetaDesk, not imported") for t in texts)
    _save(wizard, "fhir-import-preview.png")
    with qtbot.waitSignal(wizard.records_imported, timeout=30_000) as blocker:
        qtbot.mouseClick(wizard.import_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0].patients == 1
    qtbot.waitUntil(lambda: _patient_count(window) == before + 1, timeout=10_000)

    broken = tmp_path / "broken.json"
    data = json.loads(one.read_bytes())
    data["entry"][1]["resource"]["subject"]["reference"] = "urn:uuid:nobody"
    broken.write_text(json.dumps(data), encoding="utf-8")
    wizard.path_edit.setText(str(broken))
    qtbot.mouseClick(wizard.check_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "cannot be read" in wizard.summary_label.text(), timeout=30_000)
    first = wizard.preview.item(0).text()
    assert first.startswith("Cannot be read — broken.json, entry 2")
    assert "who is not in the file" in first
    assert not wizard.import_button.isEnabled()
    _save(wizard, "fhir-import-problem.png")
    wizard.close()

"""The plan export dialog, offscreen, on a real encrypted database with real worker processes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.models.audit import AuditEvent
from ketadesk.reports.plan_verify import read_plan_identity
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.plans.plan_export_dialog import PlanExportDialog
from tests.unit.test_plan_export import chart, new_patient, set_up_practice, sign_everything


@pytest.fixture
def three_patients(practice: Any) -> list[int]:
    """Two patients with a signed protocol and one without (in roster order)."""
    ids: list[int] = []
    with practice.db.session() as s:
        set_up_practice(s, practice.physician)
        for first, last, signed in (
            ("Zoë", "Ñúñez-Łukasiewicz", True),
            ("Noor", "Unsigned", False),
            ("Amara", "Okonkwo-Brandt", True),
        ):
            pid = new_patient(s, practice.physician, first, last)
            chart(s, practice.physician, pid)
            if signed:
                sign_everything(s, practice.physician, pid)
            ids.append(pid)
    return ids


@pytest.fixture
def context(practice: Any) -> AppContext:
    return AppContext(practice.db, practice.admin)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "plans"
    folder.mkdir()
    return folder


def test_batch_of_three_writes_two_and_skips_one_with_the_reason(
    qtbot: Any, context: AppContext, three_patients: list[int], out: Path, practice: Any
) -> None:
    dialog = PlanExportDialog.for_patients(context, three_patients)
    qtbot.addWidget(dialog)
    assert dialog.scope_label.text() == "3 selected patients"
    dialog.folder_edit.setText(str(out))
    dialog.encrypt_check.setChecked(True)
    dialog.password_edit.setText("harbor light 9")
    dialog.repeat_edit.setText("harbor light 9")
    with qtbot.waitSignal(dialog.plans_exported, timeout=120_000) as blocker:
        dialog.export_button.click()
        assert dialog.password_edit.text() == "" and dialog.repeat_edit.text() == ""
    summary = blocker.args[0]
    assert len(summary.written) == 2 and len(summary.skipped) == 1
    assert dialog.summary_label.text() == "Written 2, skipped 1 (no signed protocol: 1)."
    items = [dialog.details_list.item(i).text() for i in range(dialog.details_list.count())]
    assert any(
        item.startswith("Skipped: KD-") and "no signed protocol" in item for item in items
    ), items
    assert sum(item.startswith("Written: ") for item in items) == 2
    files = sorted(out.glob("*.pdf"))
    # Default names carry the MRN only, never the patient's name.
    assert all(re.fullmatch(r"KD-\d{8}_plan_v1\.pdf", f.name) for f in files), files
    assert len(files) == 2
    for path in files:
        assert read_plan_identity(path.read_bytes(), "harbor light 9").version == 1
    with practice.db.session() as s:
        events = s.execute(
            select(AuditEvent).where(AuditEvent.action == audit_actions.PLAN_EXPORTED)
        ).scalars().all()
    assert sorted(e.patient_id for e in events) == sorted(
        [three_patients[0], three_patients[2]]
    )
    assert all(e.user_name == practice.admin.user_name for e in events)


def test_mismatched_passwords_and_bad_patterns_stop_before_exporting(
    qtbot: Any,
    context: AppContext,
    three_patients: list[int],
    out: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text: shown.append(text))
    dialog = PlanExportDialog.for_all_signed(context)
    qtbot.addWidget(dialog)
    assert dialog.scope_label.text() == "All patients with a signed active protocol"
    dialog.folder_edit.setText(str(out))
    dialog.encrypt_check.setChecked(True)
    dialog.password_edit.setText("one password")
    dialog.repeat_edit.setText("another one")
    dialog.export_button.click()
    assert shown[-1] == "The two passwords do not match; type them again."
    dialog.encrypt_check.setChecked(False)
    dialog.pattern_edit.setText("{ssn}.pdf")
    assert "only these fields" in dialog.pattern_problem.text()
    dialog.export_button.click()
    assert "only these fields" in shown[-1]
    assert list(out.iterdir()) == []


def test_cancel_before_rendering_writes_nothing(
    qtbot: Any, context: AppContext, three_patients: list[int], out: Path
) -> None:
    dialog = PlanExportDialog.for_all_signed(context, None)
    qtbot.addWidget(dialog)
    dialog.folder_edit.setText(str(out))
    with qtbot.waitSignal(dialog.plans_exported, timeout=120_000) as blocker:
        dialog.export_button.click()
        dialog.cancel_export()  # before the worker reaches the first plan
    summary = blocker.args[0]
    # The batch is collected from the database before rendering starts, so the cancel set
    # right after the click always lands before the first plan is submitted.
    assert len(summary.cancelled) == 2 and not summary.written
    assert list(out.glob("*.pdf")) == []
    assert dialog.summary_label.text() == "Written 0, skipped 0, cancelled 2."
    assert not dialog.open_folder_button.isVisibleTo(dialog)


def _stale(practice: Any, patient_id: int) -> None:
    """The front desk records a new medication after the review was signed."""
    from ketadesk.storage.patients.patient_medications import add_medication

    with practice.db.session() as s:
        add_medication(s, practice.admin, patient_id, "sertraline", dose_text="50 mg",
                       frequency_text="daily")


def test_a_stale_review_is_refused_for_staff_and_asked_of_a_physician(
    qtbot: Any, three_patients: list[int], out: Path, practice: Any
) -> None:
    """Defect 6 in the dialog: staff get the reason; a physician's "export anyway" is audited."""
    from PySide6.QtCore import Qt

    stale_id = three_patients[0]
    _stale(practice, stale_id)
    admin = PlanExportDialog.for_patient(AppContext(practice.db, practice.admin), stale_id)
    qtbot.addWidget(admin)
    admin.folder_edit.setText(str(out))
    qtbot.mouseClick(admin.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: admin.summary_label.text().startswith("Not exported"), timeout=20000)
    assert "the medication list changed" in admin.summary_label.text()
    assert admin.stale_question is None and list(out.glob("*.pdf")) == []

    doctor = PlanExportDialog.for_patient(AppContext(practice.db, practice.physician), stale_id)
    qtbot.addWidget(doctor)
    doctor.folder_edit.setText(str(out))
    qtbot.mouseClick(doctor.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: doctor.stale_question is not None, timeout=20000)
    box = doctor.stale_question
    assert box is not None and "the medication list changed" in box.informativeText()
    qtbot.keyClick(box, Qt.Key.Key_Escape)  # Cancel is the default and the escape
    assert doctor.summary_label.text() == "Not exported." and list(out.glob("*.pdf")) == []

    qtbot.mouseClick(doctor.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: doctor.stale_question is not None, timeout=20000)
    box = doctor.stale_question
    assert box is not None
    [anyway] = [b for b in box.buttons() if b.text() == "Export anyway"]
    with qtbot.waitSignal(doctor.plans_exported, timeout=120_000) as blocker:
        qtbot.mouseClick(anyway, Qt.MouseButton.LeftButton)
    assert len(blocker.args[0].written) == 1
    with practice.db.session() as s:
        confirmed = s.execute(
            select(AuditEvent.patient_id)
            .where(AuditEvent.action == audit_actions.PLAN_STALE_REVIEW_CONFIRMED)
        ).scalars().all()
    assert confirmed == [stale_id]


def test_a_weak_pdf_password_is_refused_in_words_before_exporting(
    qtbot: Any,
    context: AppContext,
    three_patients: list[int],
    out: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text: shown.append(text))
    dialog = PlanExportDialog.for_patients(context, three_patients)
    qtbot.addWidget(dialog)
    dialog.folder_edit.setText(str(out))
    dialog.encrypt_check.setChecked(True)
    qtbot.keyClicks(dialog.password_edit, "1234567890")
    qtbot.keyClicks(dialog.repeat_edit, "1234567890")
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert shown and shown[-1].startswith("That PDF password is too easy to guess.")
    assert "top-100 common password" in shown[-1]
    assert list(out.iterdir()) == []

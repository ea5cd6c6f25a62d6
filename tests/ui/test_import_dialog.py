"""The CSV import dialog against a real encrypted database, offscreen: good and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from ketadesk.models.patients import Patient
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.roster.import_dialog import ImportDialog, Step

HEADER = "Patient ID,Last Name,First Name,Date of Birth,Gender,State,County,Phone,Weight (lb)"
GOOD = [
    "ACME-1001,Ñúñez-Łukasiewicz,Zoë,1980-02-01,F,FL,Alachua,(352) 555-0101,135",
    "ACME-1002,Quillon,Mateo,07/04/1975,M,NJ,Cape May,,",
    "ACME-1003,Brightwater,Hana,1990-12-24,female,FL,Leon,,",
]
BAD = [
    "ACME-2001,Fairweather,Óscar,1985-13-40,M,FL,Leon,,",
    "ACME-2002,Ashgrove,Priya,1970-05-05,F,TX,Travis,,",
]


@pytest.fixture
def context(practice, qapp):
    return AppContext(practice.db, practice.admin)


def write_csv(tmp_path: Path, rows: list[str], name: str = "roster.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8-sig")
    return path


def count_patients(context) -> int:
    with context.db.session() as s:
        return s.execute(select(func.count()).select_from(Patient)).scalar_one()


def open_and_check(qtbot, dialog: ImportDialog, path: Path) -> None:
    with qtbot.waitSignal(dialog.file_inspected, timeout=10_000):
        dialog.open_file(path)
    assert dialog.next_button.isEnabled()
    dialog.next_button.click()
    assert dialog.step == Step.MAPPING
    with qtbot.waitSignal(dialog.preview_ready, timeout=20_000):
        dialog.next_button.click()
    assert dialog.step == Step.PREVIEW


def test_good_file_maps_previews_imports_and_announces_the_change(context, qtbot, tmp_path) -> None:
    dialog = ImportDialog(context)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.file_inspected, timeout=10_000):
        dialog.open_file(write_csv(tmp_path, GOOD))
    mapping = dialog.column_mapping()
    assert mapping["last_name"] == "Last Name"
    assert mapping["dob"] == "Date of Birth"
    assert mapping["weight_lb"] == "Weight (lb)"
    assert mapping["mrn"] == "Patient ID"
    dialog.next_button.click()
    with qtbot.waitSignal(dialog.preview_ready, timeout=20_000):
        dialog.next_button.click()
    assert dialog.preview_page.problems_table.rowCount() == 0
    assert "3 ready to import, 0 with problems" in dialog.preview_page.preview_summary.text()
    assert dialog.preview_page.rows_table.item(0, 1).text().startswith("Ñúñez-Łukasiewicz, Zoë")
    assert not dialog.preview_page.only_valid_checkbox.isVisibleTo(dialog)
    assert dialog.next_button.text() == "Import" and dialog.next_button.isEnabled()

    changes: list[str] = []
    context.data_changed.connect(changes.append)
    with qtbot.waitSignal(dialog.patients_imported, timeout=20_000) as imported:
        dialog.next_button.click()
    qtbot.waitUntil(lambda: "patients" in changes, timeout=5000)
    assert imported.args[0].imported == 3
    assert dialog.step == Step.SUMMARY
    assert "Imported 3 patients" in dialog.summary_label.text()
    assert count_patients(context) == 3
    with context.db.session() as s:
        kept = dict(s.execute(select(Patient.first_name, Patient.external_id)).all())
    assert kept == {"Zoë": "ACME-1001", "Mateo": "ACME-1002", "Hana": "ACME-1003"}


def test_bad_rows_are_listed_and_import_nothing_unless_only_valid_rows(
    context, qtbot, tmp_path
) -> None:
    dialog = ImportDialog(context)
    qtbot.addWidget(dialog)
    open_and_check(qtbot, dialog, write_csv(tmp_path, [GOOD[0], *BAD, GOOD[1]]))
    problems = dialog.preview_page.problems_table
    rows = {
        (problems.item(r, 0).text(), problems.item(r, 1).text())
        for r in range(problems.rowCount())
    }
    assert ("3", 'Date of birth (column "Date of Birth")') in rows
    assert any(row == "4" and field.startswith("State") for row, field in rows)
    assert all(dialog.preview_page.problems_table.item(r, 2).text() for r in range(len(rows)))
    assert "2 with problems" in dialog.preview_page.preview_summary.text()
    assert not dialog.next_button.isEnabled()  # bad rows: nothing unless the user chooses
    dialog.preview_page.only_valid_checkbox.setChecked(True)
    assert dialog.next_button.isEnabled()
    with qtbot.waitSignal(dialog.patients_imported, timeout=20_000) as imported:
        dialog.next_button.click()
    result = imported.args[0]
    assert result.imported == 2 and result.skipped_invalid_rows == (3, 4)
    assert "Skipped 2 row(s) with problems: 3, 4." in dialog.summary_label.text()
    assert count_patients(context) == 2


def test_possible_duplicates_are_shown_and_skipped(context, qtbot, tmp_path) -> None:
    first = ImportDialog(context)
    qtbot.addWidget(first)
    open_and_check(qtbot, first, write_csv(tmp_path, GOOD[:1], "first.csv"))
    with qtbot.waitSignal(first.patients_imported, timeout=20_000):
        first.next_button.click()
    again = GOOD[0].replace("ACME-1001", "ACME-9001").replace("Zoë", "zoe")
    dialog = ImportDialog(context)
    qtbot.addWidget(dialog)
    open_and_check(qtbot, dialog, write_csv(tmp_path, [again, GOOD[1], GOOD[1]], "second.csv"))
    duplicates = dialog.preview_page.duplicates_list
    items = [duplicates.item(i).text() for i in range(duplicates.count())]
    assert "Rows 3, 4 of the file look like the same person" in items
    assert any(i.startswith("Row 2 looks like KD-") for i in items)
    with qtbot.waitSignal(dialog.patients_imported, timeout=20_000) as imported:
        dialog.next_button.click()
    assert imported.args[0].skipped_duplicate_rows == (2,)
    assert count_patients(context) == 3  # Zoë once, Mateo twice (same-file pair is only shown)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"first_name,last_name\nZo\xeb,Quill\n\x00\x01", "binary"),
        (b"Last Name,First Name\nQuillon,Mateo\n", "no column for"),
    ],
)
def test_unreadable_files_say_why(context, qtbot, tmp_path, content, message) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    dialog = ImportDialog(context)
    qtbot.addWidget(dialog)
    dialog.open_file(path)
    if message == "no column for":
        qtbot.waitUntil(lambda: dialog.next_button.isEnabled(), timeout=10_000)
        dialog.next_button.click()
        dialog.next_button.click()
    qtbot.waitUntil(lambda: dialog.message.isVisibleTo(dialog), timeout=10_000)
    assert message in dialog.message.text()
    assert dialog.step in (Step.FILE, Step.MAPPING)
    assert count_patients(context) == 0


def test_cancelled_import_leaves_the_database_as_it_was(context, qtbot, tmp_path) -> None:
    def letters(n: int) -> str:
        return "".join(chr(97 + (n // 26**i) % 26) for i in range(3))

    rows = [
        f"ACME-{n},Testperson,Pat{letters(n)},1970-01-{1 + n % 28:02d},F,FL,Leon,,"
        for n in range(600)
    ]
    dialog = ImportDialog(context)
    qtbot.addWidget(dialog)
    open_and_check(qtbot, dialog, write_csv(tmp_path, rows))
    assert dialog.preview_page.problems_table.rowCount() == 0
    with qtbot.waitSignal(dialog.import_failed, timeout=20_000) as failed:
        dialog.start_import()
        dialog.cancel_import()
    assert "cancelled" in failed.args[0]
    assert "as it was before" in dialog.summary_label.text()
    assert count_patients(context) == 0


def test_missing_file_is_reported(context, qtbot, tmp_path) -> None:
    dialog = ImportDialog(context)
    qtbot.addWidget(dialog)
    dialog.open_file(tmp_path / "nowhere.csv")
    qtbot.waitUntil(lambda: dialog.message.isVisibleTo(dialog), timeout=10_000)
    assert "There is no file nowhere.csv there." == dialog.message.text()


def test_the_chart_shows_the_previous_systems_id(context, qtbot, tmp_path) -> None:
    from ketadesk.ui.chart.patient_chart import PatientChart

    dialog = ImportDialog(context)
    qtbot.addWidget(dialog)
    open_and_check(qtbot, dialog, write_csv(tmp_path, GOOD[1:2]))
    with qtbot.waitSignal(dialog.patients_imported, timeout=20_000):
        dialog.next_button.click()
    with context.db.session() as s:
        patient_id = s.execute(select(Patient.id)).scalar_one()
    chart = PatientChart(context, patient_id)
    qtbot.addWidget(chart)
    assert chart.external_id_label.isVisibleTo(chart)
    assert chart.external_id_label.text() == "Previous system's ID: ACME-1002"

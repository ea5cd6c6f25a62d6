"""The template manager: confirm a built-in template, export, import, bad files (qtbot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ketadesk.storage.practice.practice_templates import (
    practice_templates,
)
from ketadesk.ui.common.context import AppContext
from ketadesk.ui.protocol.template_manager import TemplateManager


def open_manager(qtbot: Any, practice: Any, actor: Any) -> TemplateManager:
    manager = TemplateManager(AppContext(practice.db, actor))
    qtbot.addWidget(manager)
    qtbot.waitUntil(lambda: manager.is_loaded, timeout=10000)
    return manager


def test_confirm_export_delete_and_import(qtbot: Any, practice: Any, tmp_path: Path) -> None:
    manager = open_manager(qtbot, practice, practice.physician)
    assert manager.template_list.count() == 3
    assert "[built-in, example values]" in manager.template_list.item(0).text()
    assert not manager.delete_button.isEnabled()  # built-in templates stay
    manager.select("Intranasal")
    assert "Example values" in manager.details.toPlainText()
    with qtbot.waitSignal(manager.templates_changed, timeout=10000):
        manager.confirm_selected("Intranasal (our practice)")
    qtbot.waitUntil(lambda: manager.template_list.count() == 4, timeout=10000)
    assert manager.template_list.item(3).text() == "Intranasal (our practice)  [practice]"
    with practice.db.session() as s:
        [ours] = practice_templates(s)
    assert not ours.example_values

    path = tmp_path / "shared.json"
    manager.export_to(path)
    qtbot.waitUntil(lambda: path.exists(), timeout=10000)
    manager.select("Intranasal (our practice)")
    with qtbot.waitSignal(manager.templates_changed, timeout=10000):
        manager.delete_selected()
    qtbot.waitUntil(lambda: manager.template_list.count() == 3, timeout=10000)
    with qtbot.waitSignal(manager.templates_changed, timeout=10000):
        manager.import_from(path)
    qtbot.waitUntil(lambda: manager.template_list.count() == 4, timeout=10000)


def test_a_bad_file_is_refused_in_words(qtbot: Any, practice: Any, tmp_path: Path) -> None:
    manager = open_manager(qtbot, practice, practice.physician)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else", "templates": []}', "utf-8")
    manager.import_from(bad)
    qtbot.waitUntil(lambda: bool(manager.status_label.text()), timeout=10000)
    assert manager.status_label.text().startswith("This is not a valid KetaDesk template file")
    assert manager.template_list.count() == 3


def test_admins_cannot_change_templates(qtbot: Any, practice: Any) -> None:
    manager = open_manager(qtbot, practice, practice.admin)
    assert not manager.confirm_button.isEnabled()
    assert not manager.import_button.isEnabled()
    assert "Read-only" in manager.access_label.text()

"""The dependency arrows, checked by walking every module's imports.

ui -> storage, reports, core, models; never back (no Qt below the UI). Inside storage and ui,
each feature is a sub-package; the rules between features are written in CONTRIBUTING.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ketadesk"
QT_FREE = ("core", "models", "storage", "reports")
FORBIDDEN = ("PySide6", "shiboken6", "ketadesk.ui")


def _imports(source: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(module, names imported from it) for every absolute import in ``source``."""
    found: list[tuple[str, tuple[str, ...]]] = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, tuple(alias.name for alias in node.names)))
    return found


def _imported_modules(source: Path) -> set[str]:
    return {module for module, _names in _imports(source)}


def _is_within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _feature_of(source: Path, layer: str) -> str | None:
    """The feature sub-package of ``ketadesk/<layer>`` that holds ``source`` (None: top level)."""
    parts = source.relative_to(PACKAGE / layer).parts
    return parts[0] if len(parts) > 1 else None


def _features(layer: str) -> list[str]:
    return sorted(
        p.name for p in (PACKAGE / layer).iterdir() if p.is_dir() and (p / "__init__.py").exists()
    )


@pytest.mark.parametrize("layer", QT_FREE)
def test_qt_free_layers_import_neither_qt_nor_the_ui(layer):
    offenders = []
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files, f"no modules found in ketadesk/{layer}"
    for source in files:
        for name in _imported_modules(source):
            if any(_is_within(name, banned) for banned in FORBIDDEN):
                offenders.append(f"{source.relative_to(PACKAGE.parent)} imports {name}")
    assert offenders == []


@pytest.mark.parametrize("layer", ("storage", "ui"))
def test_every_feature_package_says_what_it_owns(layer):
    features = _features(layer)
    assert len(features) >= 5, f"ketadesk/{layer} is not split into feature packages"
    for feature in features:
        init = PACKAGE / layer / feature / "__init__.py"
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert docstring, f"ketadesk/{layer}/{feature}/__init__.py has no docstring"


@pytest.mark.parametrize("layer", ("storage", "ui"))
def test_features_use_only_public_modules_and_names_of_other_features(layer):
    offenders = []
    for source in sorted((PACKAGE / layer).rglob("*.py")):
        own = _feature_of(source, layer)
        for module, names in _imports(source):
            parts = module.split(".")
            if parts[:2] != ["ketadesk", layer] or len(parts) < 3 or parts[2] == own:
                continue
            private = [p for p in parts[3:] if p.startswith("_")]
            private += [n for n in names if n.startswith("_")]
            if private:
                offenders.append(f"{source.relative_to(PACKAGE.parent)}: {module} {private}")
    assert offenders == []


def test_storage_security_depends_on_no_other_storage_feature():
    offenders = []
    for source in sorted((PACKAGE / "storage" / "security").rglob("*.py")):
        for module in _imported_modules(source):
            if _is_within(module, "ketadesk.storage") and not _is_within(
                module, "ketadesk.storage.security"
            ):
                offenders.append(f"{source.name} imports {module}")
    assert offenders == []


def test_only_the_demo_and_its_command_use_the_demo_generators():
    offenders = []
    for source in sorted(PACKAGE.rglob("*.py")):
        if _is_within(".".join(source.relative_to(PACKAGE.parent).with_suffix("").parts),
                      "ketadesk.storage.demo") or source.name in {"demo.py", "self_test.py"}:
            continue
        for module in _imported_modules(source):
            if _is_within(module, "ketadesk.storage.demo"):
                offenders.append(f"{source.relative_to(PACKAGE.parent)} imports {module}")
    assert offenders == []


def test_the_ui_never_opens_database_sessions_itself():
    """The UI calls storage services; it never imports SQLAlchemy (no live rows in widgets)."""
    offenders = []
    for source in sorted((PACKAGE / "ui").rglob("*.py")):
        for module in _imported_modules(source):
            if _is_within(module, "sqlalchemy"):
                offenders.append(f"{source.relative_to(PACKAGE.parent)} imports {module}")
    assert offenders == []


def test_ui_common_imports_no_ui_feature():
    offenders = []
    for source in sorted((PACKAGE / "ui" / "common").rglob("*.py")):
        for module in _imported_modules(source):
            if _is_within(module, "ketadesk.ui") and not _is_within(module, "ketadesk.ui.common"):
                offenders.append(f"{source.name} imports {module}")
    assert offenders == []


def test_the_checks_find_violations(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from PySide6.QtCore import QObject\nimport ketadesk.ui.ops\n"
        "from ketadesk.storage.reviews.interaction_reviews import _private_helper\n"
    )
    found = _imports(probe)
    assert {"PySide6.QtCore", "ketadesk.ui.ops"} <= _imported_modules(probe)
    assert ("ketadesk.storage.reviews.interaction_reviews", ("_private_helper",)) in found


@pytest.mark.parametrize(
    ("layer", "allowed"),
    [
        ("core", ("ketadesk.core", "ketadesk.resources")),
        ("reports", ("ketadesk.reports", "ketadesk.core", "ketadesk.resources")),
        ("models", ("ketadesk.models", "ketadesk.core")),
    ],
)
def test_the_lowest_floors_import_no_storage(layer, allowed):
    offenders = []
    for source in sorted((PACKAGE / layer).rglob("*.py")):
        for module in _imported_modules(source):
            if _is_within(module, "ketadesk") and not any(_is_within(module, a) for a in allowed):
                offenders.append(f"{source.relative_to(PACKAGE.parent)} imports {module}")
    assert offenders == []

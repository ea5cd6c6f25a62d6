"""The UI tests run on a real X server (Xvfb through xcb), as the app runs on a desk."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QGuiApplication


def test_ui_tests_run_on_a_real_x_server(qapp, xvfb):
    if xvfb is None:
        pytest.skip("run with --no-xvfb or without Xvfb: Qt uses QT_QPA_PLATFORM instead")
    assert QGuiApplication.platformName() == "xcb"
    screen = QGuiApplication.primaryScreen().availableGeometry()
    assert (screen.width(), screen.height()) == (1920, 1080)  # both checked sizes fit

"""Shared test set-up: Qt offscreen, no keyring, every database in a temp folder."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Tests never touch the developer's real keyring or data folders.
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"

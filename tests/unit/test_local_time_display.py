"""Defect 19: times are stored in UTC and shown in the computer's local time."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import pytest

from ketadesk.core.protocol_templates import builtin_templates
from ketadesk.storage.protocols.protocol_versions import ProtocolVersionInfo


@pytest.fixture
def new_york(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def version(status: str, signed_at: datetime | None) -> ProtocolVersionInfo:
    moment = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)  # 9:30 pm the evening before in NY
    return ProtocolVersionInfo(
        version_id=1, protocol_id=1, patient_id=1, number=2, status=status,
        protocol=builtin_templates()[0].protocol, content_hash="0" * 64, template_name="t",
        start_date=date(2026, 11, 30), weight=None, created_by="drquill", created_at=moment,
        updated_at=moment, signed_by="drquill", signed_by_full_name="Dr. Quill",
        signed_at=signed_at, interaction_review_id=None, acknowledged_warnings=(),
    )


def test_version_labels_show_local_time_not_utc(new_york) -> None:
    signed = version("signed", datetime(2026, 11, 25, 2, 30, tzinfo=UTC))
    assert signed.label == "Version 2 — signed 11/24/2026 21:30 by Dr. Quill"
    assert version("draft", None).label == "Version 2 — draft (saved 11/24/2026 21:30)"
    assert "UTC" not in signed.label

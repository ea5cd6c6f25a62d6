"""The words the roster and the chart use for a patient checked out to a visit pack."""

from __future__ import annotations

from datetime import UTC, datetime

from ketadesk.storage.visits.visit_leases import VisitMarker
from ketadesk.ui.common.qdate_conversion import local_time_text


def lease_words(marker: VisitMarker, now: datetime | None = None) -> str:
    """"lease until …", or "lease ended …" once it has (the pack is overdue back)."""
    until = local_time_text(marker.until)
    if (now or datetime.now(UTC)) > marker.until:
        return f"lease ended {until}; the pack is due back"
    return f"lease until {until}"


def on_visit_words(status_label: str, marker: VisitMarker) -> str:
    """The status cell's tooltip for a patient checked out to a visit pack."""
    words = marker.words()
    return (
        f"{words[0].upper()}{words[1:]}, {lease_words(marker)}. Status: {status_label}. Edits made "
        "here are kept; a record also changed on the laptop waits for a physician when the "
        "pack is returned."
    )

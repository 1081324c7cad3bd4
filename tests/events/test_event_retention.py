"""The event ledger's retention: never under 7 days, and only what is older goes."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events.models import InboundEvent
from events.services.retention import RetentionTooShort, events_purge
from workspaces.models import default_workspace

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def event(age: timedelta, event_id: str) -> InboundEvent:
    return InboundEvent.objects.create(workspace_id=default_workspace(), event_id=event_id, type="a.b",
                                       received_at=NOW - age, payload={}, payload_hash="0" * 64)


def test_events_older_than_the_window_are_purged(db):
    event(timedelta(days=8), "old")
    event(timedelta(days=7) - timedelta(seconds=1), "young")
    assert events_purge(now=NOW, keep_days=7) == 1
    assert list(InboundEvent.objects.values_list("event_id", flat=True)) == ["young"]


def test_a_window_under_seven_days_is_refused_with_the_reason(db):
    with pytest.raises(RetentionTooShort, match="at least 7 days"):
        events_purge(now=NOW, keep_days=3)

"""The event ledger's retention: never under 7 days, and only what is older goes."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from events.models import InboundEvent
from events.services.retention import RetentionTooShort, events_purge
from tests.conftest import ROOT
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


def test_the_retention_pulse_names_the_purge_task(db):
    from runs.pulses import PULSES
    from shells.tasks.ingress import purge

    assert ("tickwise: event retention", "events.purge", 1, "days") in PULSES
    assert purge.name == "events.purge"
    event(timedelta(days=30), "ancient")  # received 30 days before NOW, long before today
    assert purge() == 1  # the task's body, in this process, with the setting's 7 days


def test_a_setting_under_seven_days_stops_the_process_at_start_up():
    env = {**os.environ, "TICKWISE_EVENT_RETENTION_DAYS": "3", "DJANGO_SETTINGS_MODULE": "scheduler_project.settings"}
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "TICKWISE_EVENT_RETENTION_DAYS must be >= 7, got 3" in result.stderr

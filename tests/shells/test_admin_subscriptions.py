"""The subscriptions admin: pages render, saves and actions go through the audited services."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model

from events.models import BreakerState, Subscription
from schedules.models import Agent
from workspaces.models import AuditEntry, default_workspace


@pytest.fixture
def staff_client(client, db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def subscription(db) -> Subscription:
    agent = Agent.objects.create(name="reactor")
    return Subscription.objects.create(agent=agent, workspace_id=agent.workspace_id, name="pushes",
                                       event_type="github.*", breaker_state=BreakerState.HELD,
                                       held_at=datetime(2026, 12, 1, tzinfo=UTC))


def test_pages_render(staff_client, subscription):
    assert staff_client.get("/admin/events/subscription/").status_code == 200
    page = staff_client.get(f"/admin/events/subscription/{subscription.pk}/change/")
    assert page.status_code == 200 and b"routes and their runs" in page.content.lower()
    assert staff_client.get("/admin/events/subscription/add/").status_code == 200


def test_release_action_closes_the_breaker_and_is_audited(staff_client, subscription):
    staff_client.post("/admin/events/subscription/", {"action": "release_selected",
                                                      "_selected_action": [subscription.pk]})
    subscription.refresh_from_db()
    assert subscription.breaker_state == BreakerState.CLOSED and subscription.version == 2
    entry = AuditEntry.objects.get(object_type="subscription", action="release")
    assert (entry.source, entry.detail) == ("admin", "breaker held -> closed")


def test_the_add_form_names_a_bad_template_variable(staff_client, subscription):
    form = {"workspace": default_workspace(), "agent": subscription.agent_id, "name": "bad",
            "event_type": "a.b", "match": "{}", "input_template": "{{event.nope}}", "session_mode": "new",
            "overlap_policy": "buffer", "concurrency_scope": "session", "max_concurrent": 1, "timeout_seconds": 300,
            "max_attempts": 3, "retry_backoff_seconds": 10, "retry_backoff_max_seconds": 600,
            "debounce_seconds": 60, "breaker_limit": 20, "breaker_window_seconds": 600,
            "breaker_cooldown_seconds": 600}
    page = staff_client.post("/admin/events/subscription/add/", form)
    assert page.status_code == 200 and b"event.nope" in page.content
    assert not Subscription.objects.filter(name="bad").exists()
    form["input_template"] = "{{event.data.text}}"
    assert staff_client.post("/admin/events/subscription/add/", form).status_code == 302
    assert AuditEntry.objects.filter(object_type="subscription", action="create").count() == 1

"""The admin: pages render, actions go through the services."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from runs.models import Run, Trigger
from schedules.models import Agent, Schedule


@pytest.fixture
def staff_client(client, db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def schedule(db):
    agent = Agent.objects.create(name="demo")
    return Schedule.objects.create(agent=agent, name="minutely", cron="* * * * *")


@pytest.mark.parametrize("url", ["/admin/schedules/schedule/", "/admin/schedules/agent/", "/admin/runs/run/",
                                 "/admin/schedules/schedule/add/", "/admin/django_celery_beat/periodictask/"])
def test_pages_render(staff_client, schedule, url):
    assert staff_client.get(url).status_code == 200


def act(client, action, schedule):
    return client.post("/admin/schedules/schedule/", {"action": action, "_selected_action": [schedule.pk]})


def test_pause_resume_and_run_now_actions(staff_client, schedule, django_capture_on_commit_callbacks):
    act(staff_client, "pause_selected", schedule)
    schedule.refresh_from_db()
    assert schedule.paused
    with django_capture_on_commit_callbacks():
        act(staff_client, "run_now_selected", schedule)
    assert Run.objects.get(schedule=schedule).trigger == Trigger.MANUAL
    act(staff_client, "resume_selected", schedule)
    schedule.refresh_from_db()
    assert not schedule.paused and schedule.next_fire_at is not None


def test_bad_cron_in_the_form_is_an_error_and_saves_nothing(staff_client, schedule):
    response = staff_client.post(f"/admin/schedules/schedule/{schedule.pk}/change/", {
        "agent": schedule.agent.pk, "name": "minutely", "kind": "cron", "cron": "0 0 30 2 *",
        "timezone": "UTC", "dst_gap": "skip", "dst_fold": "first", "jitter_seconds": 0,
        "interval_mode": "fixed_rate", "missed_policy": "skip", "missed_grace_seconds": 60, "replay_cap": 100,
        "overlap_policy": "skip", "max_concurrent": 1, "concurrency_scope": "schedule", "timeout_seconds": 300,
        "max_attempts": 3, "retry_backoff_seconds": 10, "retry_backoff_max_seconds": 600,
        "session_mode": "new", "failure_limit": 5,
    })
    assert response.status_code == 200 and b"February" in response.content
    schedule.refresh_from_db()
    assert schedule.cron == "* * * * *" and schedule.version == 1


def test_agent_form_rejects_bad_adapter_config(staff_client):
    response = staff_client.post("/admin/schedules/agent/add/", {
        "name": "chat", "adapter": "openai", "config": "{}", "is_active": "on"})
    assert response.status_code == 200 and b"model" in response.content
    assert not Agent.objects.filter(name="chat").exists()

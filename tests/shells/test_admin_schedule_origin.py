"""A schedule's origin on its admin page, and Renew for an agent's recurring schedule."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from schedules.models import Agent, CreatorKind, Schedule
from schedules.services import schedule_save
from workspaces.models import AuditEntry


@pytest.fixture
def staff_client(client, db):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    return client


@pytest.fixture
def made_by_agent(db) -> Schedule:
    agent = Agent.objects.create(name="scout")
    now = timezone.now()
    return schedule_save(Schedule(agent=agent, name="agent-hourly", kind="interval", interval_seconds=3600,
                                  end_at=now + timedelta(hours=1), creator_kind=CreatorKind.AGENT_RUN,
                                  origin_run_id=41, origin_agent=agent, origin_session_id="s-9",
                                  reason="the user asked for hourly checks"), now=now)


def test_the_page_says_which_run_made_the_schedule_and_why(staff_client, made_by_agent):
    page = staff_client.get(f"/admin/schedules/schedule/{made_by_agent.pk}/change/").content.decode()
    assert 'agent <a href="/admin/runs/run/41/change/">run 41</a> of scout (session s-9)' in page
    assert "the user asked for hourly checks" in page


def test_renew_keeps_an_agent_schedule_for_another_period(staff_client, made_by_agent):
    staff_client.post("/admin/schedules/schedule/", {"action": "renew_selected",
                                                      "_selected_action": [made_by_agent.pk]})
    made_by_agent.refresh_from_db()
    assert made_by_agent.end_at > timezone.now() + timedelta(days=6)
    assert AuditEntry.objects.filter(object_id=made_by_agent.pk, action="update", source="admin").exists()


def test_a_person_schedule_is_not_renewed(staff_client, made_by_agent):
    person = Schedule.objects.create(agent=made_by_agent.agent, name="nightly", cron="0 3 * * *")
    response = staff_client.post("/admin/schedules/schedule/", {"action": "renew_selected",
                                                                 "_selected_action": [person.pk]}, follow=True)
    assert "does not expire" in response.content.decode()

"""The admin scopes as the API does: staff who are not superusers see and change only their workspaces."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from runs.models import Run
from runs.services.manual import run_now
from schedules.models import Agent, Schedule
from workspaces.models import AuditEntry, Membership, Role, Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_workspaces():
    mine, theirs = Workspace.objects.create(slug="mine", name="Mine"), Workspace.objects.create(slug="theirs", name="T")
    ours = Schedule.objects.create(agent=Agent.objects.create(workspace=mine, name="ours"), name="s", cron="* * * * *")
    other = Schedule.objects.create(agent=Agent.objects.create(workspace=theirs, name="other"), name="s",
                                    cron="* * * * *")
    return mine, ours, other


def staff(client, workspace, role):
    user = get_user_model().objects.create_user(f"staff-{role}", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["schedules", "runs"]))
    Membership.objects.create(workspace=workspace, user=user, role=role)
    client.force_login(user)
    return client


def test_staff_see_only_their_workspaces(client, two_workspaces):
    mine, ours, other = two_workspaces
    run_now(ours, now=ours.created_at)
    run_now(other, now=other.created_at)
    staff(client, mine, Role.VIEWER)
    listing = client.get("/admin/schedules/schedule/").content.decode()
    assert "ours/s" in listing and "other/s" not in listing
    assert client.get(f"/admin/schedules/schedule/{other.pk}/change/").status_code == 302  # not found: sent away
    runs = client.get("/admin/runs/run/").context["cl"].result_list
    assert [run.schedule_id for run in runs] == [ours.pk]
    assert Run.objects.filter(schedule=other).exists()
    assert "other" not in client.get("/admin/schedules/agent/").content.decode()


def test_a_viewer_cannot_change_an_admin_can_and_the_change_is_audited(client, two_workspaces):
    mine, ours, _ = two_workspaces
    viewer = staff(client, mine, Role.VIEWER)
    page = viewer.get(f"/admin/schedules/schedule/{ours.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content  # read-only for a viewer
    Membership.objects.filter(workspace=mine).update(role=Role.ADMIN)
    page = viewer.get(f"/admin/schedules/schedule/{ours.pk}/change/")
    assert b'name="_save"' in page.content
    viewer.post("/admin/schedules/schedule/", {"action": "pause_selected", "_selected_action": [ours.pk]})
    ours.refresh_from_db()
    assert ours.paused
    entry = AuditEntry.objects.get(object_type="schedule", object_id=ours.pk, action="pause")
    assert entry.source == "admin" and entry.user.username == "staff-viewer"
    assert "pause" in viewer.get(f"/admin/schedules/schedule/{ours.pk}/change/").content.decode()

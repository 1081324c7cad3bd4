"""The read-only admin of completion webhooks: each delivery with its attempts, scoped to the staff's workspaces."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from runs.models import Run, RunState
from runs.outbound import OutboundAttempt, OutboundDelivery
from runs.services.dispatch import UnscheduledRequest, run_dispatch_unscheduled
from schedules.models import Agent
from workspaces.models import Membership, Role, Workspace

pytestmark = pytest.mark.django_db


def delivery_in(workspace: Workspace, name: str) -> OutboundDelivery:
    agent = Agent.objects.create(workspace=workspace, name=name, completion_url="http://127.0.0.1:9/hook")
    run = run_dispatch_unscheduled(agent, UnscheduledRequest(trigger="manual", identity=name, input=""),
                                   now=timezone.now(), publish=False)
    assert run is not None
    Run.objects.filter(pk=run.pk).update(state=RunState.SUCCEEDED)
    delivery = OutboundDelivery.objects.create(run=run, url=agent.completion_url, webhook_id=f"msg_{name}",
                                               event_type="run.succeeded", payload={"type": "run.succeeded",
                                                                                    "data": {"marker": name}},
                                               attempts=1, last_status_code=503, last_error="HTTP 503")
    OutboundAttempt.objects.create(delivery=delivery, number=1, at=timezone.now(), status_code=503,
                                   error="HTTP 503: try later", duration_ms=12)
    return delivery


def test_staff_see_their_workspaces_deliveries_with_attempts_and_body(client):
    mine, theirs = Workspace.objects.create(slug="mine", name="Mine"), Workspace.objects.create(slug="theirs", name="T")
    ours, other = delivery_in(mine, "ours"), delivery_in(theirs, "other")
    user = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="runs"))
    Membership.objects.create(workspace=mine, user=user, role=Role.VIEWER)
    client.force_login(user)

    listing = client.get("/admin/runs/outbounddelivery/").content.decode()
    assert ours.webhook_id in listing and other.webhook_id not in listing
    page = client.get(f"/admin/runs/outbounddelivery/{ours.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "HTTP 503: try later" in text and "&quot;marker&quot;: &quot;ours&quot;" in text
    assert "Save" not in text  # read-only: nothing to save
    assert client.get(f"/admin/runs/outbounddelivery/{other.pk}/change/").status_code == 302  # not theirs
    assert client.get("/admin/runs/outbounddelivery/add/").status_code == 403

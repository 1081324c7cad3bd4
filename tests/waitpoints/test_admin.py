"""The waitpoints' admin: read-only pages that show where a parked run waits and how its wait ended."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from triggers.waits import WaitIn, waitpoint_complete, waitpoint_create

from .test_services import NOW, running_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    return client


def test_the_list_and_a_waitpoint_render_read_only_with_its_runs(staff_client):
    run = running_run()
    parked = waitpoint_create(run.id, WaitIn(kind="token", timeout_seconds=60, reason="approval"), now=NOW)
    done = waitpoint_complete(parked.waitpoint.id, payload={"approved": True}, by="test", now=NOW)
    listed = staff_client.get("/admin/waitpoints/waitpoint/")
    assert listed.status_code == 200 and str(parked.waitpoint.id) in listed.content.decode()
    page = staff_client.get(f"/admin/waitpoints/waitpoint/{parked.waitpoint.id}/change/").content.decode()
    assert "approval" in page and f"/admin/runs/run/{done.waitpoint.resume_run_id}/change/" in page
    assert "&quot;approved&quot;: true" in page
    assert staff_client.get("/admin/waitpoints/waitpoint/add/").status_code == 403
    run_page = staff_client.get(f"/admin/runs/run/{run.id}/change/").content.decode()
    assert f"/admin/waitpoints/waitpoint/?run__id__exact={run.id}" in run_page  # the run's page links them
    only_its = staff_client.get(f"/admin/waitpoints/waitpoint/?run__id__exact={run.id}")
    assert only_its.status_code == 200 and str(parked.waitpoint.id) in only_its.content.decode()


def test_a_run_page_tells_a_park_from_a_background_result_its_session_awaits(staff_client):
    from runs.models import Run, RunState
    from triggers.background import ReplyTo, background_run_start

    asker = running_run()
    waitpoint_create(asker.id, WaitIn(kind="token", timeout_seconds=60), now=NOW, attempt=1)
    asker = Run.objects.select_related("agent").get(id=asker.id)
    assert asker.state == RunState.WAITING
    background_run_start(asker.agent, input="build", now=NOW, reply_to=ReplyTo(asker))
    page = staff_client.get(f"/admin/runs/run/{asker.id}/change/").content.decode()
    assert "1 parked here; 1 background result(s) awaited by this session" in page
    replied_only = background_run_start(asker.agent, input="build again", now=NOW)
    other = staff_client.get(f"/admin/runs/run/{replied_only.id}/change/").content.decode()
    assert "parked here" not in other and "awaited" not in other

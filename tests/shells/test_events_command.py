"""``manage.py events``: replay re-routes a stored event, starting runs only for pairs that are new."""
from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from events.models import InboundEvent, Subscription
from runs.models import Run
from schedules.models import Agent
from triggers.routing import event_route
from workspaces.models import AuditEntry, default_workspace

pytestmark = pytest.mark.django_db


def events(*args: str) -> str:
    out = io.StringIO()
    call_command("events", *args, stdout=out)
    return out.getvalue()


def test_replay_starts_runs_only_where_the_pair_is_new():
    agent = Agent.objects.create(name="late")
    event = InboundEvent.objects.create(workspace_id=default_workspace(), event_id="gh-1", type="github.push",
                                        received_at=timezone.now(), payload={"repo": "web"}, payload_hash="h")
    event_route(event.id, now=timezone.now())  # nothing listened yet
    assert "no_match" in events("list")
    Subscription.objects.create(agent=agent, workspace_id=agent.workspace_id, name="pushes", event_type="github.*")
    first = events("replay", str(event.id))
    run = Run.objects.get(agent=agent)
    assert f"new run {run.pk} (pending) for subscription pushes" in first and "routed, 1 new run(s)" in first
    Subscription.objects.filter(name="pushes").update(input_template="edited", version=2)
    second = events("replay", str(event.id))
    assert "already routed (no new run): 1 subscription(s)" in second and "0 new run(s)" in second
    assert Run.objects.filter(agent=agent).count() == 1
    assert AuditEntry.objects.filter(object_type="inboundevent", action="replay", source="command").count() == 2


@pytest.mark.parametrize("args, message", [
    (("replay",), "replay needs EVENT_ID"),
    (("replay", "x1"), "EVENT_ID must be a whole number"),
    (("replay", "999999"), "no event 999999"),
    (("list", "5"), "list takes no EVENT_ID"),
])
def test_bad_arguments_are_named(args, message):
    with pytest.raises(CommandError, match=message):
        events(*args)

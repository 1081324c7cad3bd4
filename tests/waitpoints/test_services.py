"""The waitpoint services without processes: what a wait may ask, who may park, who may resume.

Runs are built in the state the service meets (``running`` under an
attempt); ``now`` is passed in.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from pydantic import ValidationError

from runs.models import Run, RunState, SkipReason, Trigger
from runs.services.execute import session_history
from schedules.models import Agent
from triggers.waits import (
    WaitIn,
    WaitRefused,
    callback_signature,
    callback_signature_valid,
    waitpoint_cancel,
    waitpoint_complete,
    waitpoint_create,
    waitpoints_sweep,
)
from waitpoints.models import MAX_WAIT_SECONDS, WaitState
from workspaces.models import Membership, Role, Workspace

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def running_run(*, user_id: int | None = None) -> Run:
    space = Workspace.objects.create(slug="acme", name="Acme")
    agent = Agent.objects.create(name="waiter", adapter="echo", workspace=space)
    return Run.objects.create(agent=agent, trigger=Trigger.MANUAL, tick_at=NOW, state=RunState.RUNNING, attempt=1,
                              fencing_token=1, idempotency_key="k1", session_id="s1", started_at=NOW,
                              chain_id="c1", started_by_id=user_id)


@pytest.mark.parametrize(("body", "names"), [
    ({"kind": "token"}, "timeout_seconds"),
    ({"kind": "token", "timeout_seconds": MAX_WAIT_SECONDS + 1}, "timeout_seconds"),
    ({"kind": "token", "timeout_seconds": 0}, "timeout_seconds"),
    ({"kind": "event", "timeout_seconds": 60}, "event_type"),
    ({"kind": "event", "timeout_seconds": 60, "event_type": "deploy.*", "match": {"colour": "red"}}, "match"),
    ({"kind": "timer", "timeout_seconds": 60}, "seconds"),
    ({"kind": "timer", "timeout_seconds": 60, "seconds": 61}, "seconds"),
    ({"kind": "token", "timeout_seconds": 60, "seconds": 5}, "seconds"),
    ({"kind": "sleep", "timeout_seconds": 60}, "kind"),
])
def test_a_bad_wait_is_refused_naming_what_is_wrong(body, names):
    with pytest.raises(ValidationError) as refused:
        WaitIn.model_validate(body)
    assert names in str(refused.value)


def test_the_longest_wait_allowed_is_thirty_days():
    assert WaitIn(kind="token", timeout_seconds=30 * 86400).timeout_seconds == MAX_WAIT_SECONDS


def test_only_a_running_attempt_parks():
    run = running_run()
    with pytest.raises(WaitRefused, match="attempt 2"):
        waitpoint_create(run.id, WaitIn(kind="token", timeout_seconds=60), now=NOW, attempt=2)
    Run.objects.filter(id=run.id).update(state=RunState.SUCCEEDED)
    with pytest.raises(WaitRefused, match="not running"):
        waitpoint_create(run.id, WaitIn(kind="token", timeout_seconds=60), now=NOW)
    assert not run.waitpoints.exists()


def test_a_creator_who_lost_the_workspace_gets_a_skipped_resume_not_a_run():
    user = get_user_model().objects.create_user("ops")
    run = running_run(user_id=user.pk)
    membership = Membership.objects.create(workspace=run.agent.workspace, user=user, role=Role.OPERATOR)
    parked = waitpoint_create(run.id, WaitIn(kind="token", timeout_seconds=60), now=NOW, attempt=1)
    membership.delete()
    done = waitpoint_complete(parked.waitpoint.id, payload={"approved": True}, by="test", now=NOW)
    resume = Run.objects.get(id=done.waitpoint.resume_run_id)
    assert resume.state == RunState.SKIPPED and resume.skip_reason == SkipReason.UNAUTHORIZED
    assert done.waitpoint.state == WaitState.COMPLETED


def test_the_sweep_times_out_only_what_is_due_and_each_once():
    run = running_run()
    parked = waitpoint_create(run.id, WaitIn(kind="token", timeout_seconds=60), now=NOW)
    assert waitpoints_sweep(now=NOW + timedelta(seconds=59)) == 0
    assert waitpoints_sweep(now=NOW + timedelta(seconds=60)) == 1
    assert waitpoints_sweep(now=NOW + timedelta(seconds=61)) == 0
    wait = parked.waitpoint.__class__.objects.get(id=parked.waitpoint.id)
    assert wait.state == WaitState.TIMED_OUT and Run.objects.filter(trigger=Trigger.RESUME).count() == 1


def test_the_callback_signature_is_the_servers_and_the_ids():
    run = running_run()
    parked = waitpoint_create(run.id, WaitIn(kind="token", timeout_seconds=60), now=NOW)
    signature = callback_signature(parked.waitpoint.id)
    assert parked.callback_url.endswith(f"/api/v1/waitpoints/{parked.waitpoint.id}/callback?sig={signature}")
    assert callback_signature_valid(parked.waitpoint.id, signature)
    assert not callback_signature_valid(parked.waitpoint.id, signature.upper())
    assert not callback_signature_valid(parked.waitpoint.id, "")
    assert not callback_signature_valid(str(run.id), signature)


def test_a_chat_agents_resume_hears_the_parked_exchange_then_the_completion():
    run = running_run()
    Run.objects.filter(id=run.id).update(input="deploy web once approved")
    parked = waitpoint_create(run.id, WaitIn(kind="token", timeout_seconds=60, reason="approval"), now=NOW)
    done = waitpoint_complete(parked.waitpoint.id, payload={"approved": True}, by="test", now=NOW)
    resume = Run.objects.get(id=done.waitpoint.resume_run_id)
    assert resume.session_mode == "persistent" and resume.session_id == run.session_id
    assert session_history(resume) == [
        {"role": "user", "content": "deploy web once approved"},
        {"role": "assistant", "content": f"Waiting on token waitpoint {parked.waitpoint.id}: approval"}]
    assert json.loads(resume.input)["payload"] == {"approved": True}  # the next user message


def test_a_cancelled_wait_ends_its_parked_run_once_and_never_resumes():
    run = running_run()
    parked = waitpoint_create(run.id, WaitIn(kind="token", timeout_seconds=60), now=NOW)
    first = waitpoint_cancel(parked.waitpoint.id, now=NOW)
    assert first.fresh and first.waitpoint.state == WaitState.CANCELLED
    assert Run.objects.get(id=run.id).state == RunState.CANCELLED
    assert not waitpoint_cancel(parked.waitpoint.id, now=NOW).fresh
    late = waitpoint_complete(parked.waitpoint.id, payload={"approved": True}, by="test", now=NOW)
    assert not late.fresh and late.waitpoint.state == WaitState.CANCELLED
    assert waitpoints_sweep(now=NOW + timedelta(days=1)) == 0
    assert not Run.objects.filter(trigger=Trigger.RESUME).exists()


def test_a_timer_due_at_its_timeout_resumes_ok():
    run = running_run()
    parked = waitpoint_create(run.id, WaitIn(kind="timer", seconds=60, timeout_seconds=60), now=NOW)
    assert waitpoints_sweep(now=NOW + timedelta(seconds=60)) == 1
    wait = parked.waitpoint.__class__.objects.get(id=parked.waitpoint.id)
    assert wait.state == WaitState.COMPLETED and wait.completed_by == "timer"
    assert json.loads(Run.objects.get(id=wait.resume_run_id).input)["ok"] is True

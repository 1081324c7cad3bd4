"""Run waits without processes: a run parks until another run ends, and a background run replies to a session.

Runs are built in the state each service meets; a run's end goes through
``run_ended``, the one hook every terminal transition calls, with the hooks
the triggers layer registered at start-up.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from pydantic import ValidationError

from runs.models import Run, RunState, Trigger
from runs.services.ended import run_ended
from schedules.models import Agent, Schedule
from schedules.services import schedule_save
from triggers.background import ReplyTo, background_run_start
from triggers.waits import WaitIn, WaitRefused, waitpoint_cancel, waitpoint_complete, waitpoint_create
from waitpoints.models import WaitKind, Waitpoint, WaitState
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
_keys = count(1)


@pytest.fixture
def agent() -> Agent:
    space = Workspace.objects.create(slug="acme", name="Acme")
    return Agent.objects.create(name="waiter", adapter="echo", workspace=space)


def a_run(agent: Agent, *, state: str = RunState.RUNNING, trigger: str = Trigger.MANUAL,
          schedule: Schedule | None = None, output: object = None, session: str = "s1") -> Run:
    return Run.objects.create(agent=agent, trigger=trigger, tick_at=NOW, state=state, attempt=1, fencing_token=1,
                              idempotency_key=f"k{next(_keys)}", session_id=session, started_at=NOW,
                              chain_id="c1", schedule=schedule, output=output)


def end(run: Run, state: str = RunState.SUCCEEDED, output: object = None, message: str = "") -> None:
    """A terminal transition as the ledger writes it, then its hook, in one transaction."""
    Run.objects.filter(id=run.id).update(state=state, output=output, error_message=message, finished_at=NOW)
    run_ended(Run.objects.select_related("agent", "schedule").get(id=run.id), now=NOW,
              failed=state != RunState.SUCCEEDED)


def resume_input(waitpoint: Waitpoint) -> dict[str, object]:
    waitpoint.refresh_from_db()
    assert waitpoint.resume_run is not None, "the wait did not resume"
    return dict(json.loads(waitpoint.resume_run.input))


def park_on(waiter: Run, watched: Run) -> Waitpoint:
    spec = WaitIn(kind="run", run_id=watched.pk, timeout_seconds=600)
    return waitpoint_create(waiter.pk, spec, now=NOW, attempt=1).waitpoint


@pytest.mark.parametrize(("body", "names"), [
    ({"kind": "run", "timeout_seconds": 60}, "run_id"),
    ({"kind": "token", "timeout_seconds": 60, "run_id": 5}, "run_id"),
    ({"kind": "run", "timeout_seconds": 60, "run_id": 0}, "run_id"),
])
def test_a_bad_run_wait_is_refused_naming_what_is_wrong(body, names):
    with pytest.raises(ValidationError) as refused:
        WaitIn.model_validate(body)
    assert names in str(refused.value)


def test_a_run_wait_resumes_when_the_watched_run_ends_with_its_outcome(agent):
    waiter, build = a_run(agent), a_run(agent, session="s2")
    waitpoint = park_on(waiter, build)
    assert Run.objects.get(id=waiter.id).state == RunState.WAITING
    assert Waitpoint.objects.get(id=waitpoint.id).state == WaitState.WAITING
    end(build, output={"artifact": "web-42.tar"})
    received = resume_input(waitpoint)
    assert received["ok"] is True and received["kind"] == WaitKind.RUN
    assert received["payload"] == {"run": build.pk, "ended_run": build.pk, "state": "succeeded",
                                   "output": {"artifact": "web-42.tar"}}
    resume = Waitpoint.objects.get(id=waitpoint.id).resume_run
    assert resume.session_id == "s1" and resume.parent_run_id == waiter.pk and resume.trigger == Trigger.RESUME


def test_a_failed_run_resumes_its_waiter_with_the_error(agent):
    waiter, build = a_run(agent), a_run(agent, session="s2")
    waitpoint = park_on(waiter, build)
    end(build, RunState.FAILED, message="compiler exploded")
    payload = resume_input(waitpoint)["payload"]
    assert payload["state"] == "failed" and payload["error"]["message"] == "compiler exploded"


def test_a_run_that_ended_before_the_wait_completes_it_at_once(agent):
    build = a_run(agent, state=RunState.SUCCEEDED, output={"done": 1}, session="s2")
    waitpoint = park_on(a_run(agent), build)
    assert Waitpoint.objects.get(id=waitpoint.id).state == WaitState.COMPLETED
    assert resume_input(waitpoint)["payload"]["output"] == {"done": 1}


def test_a_parked_run_has_not_ended_its_last_resume_ends_it(agent):
    build = a_run(agent, session="s2")
    build_wait = waitpoint_create(build.pk, WaitIn(kind="token", timeout_seconds=600), now=NOW, attempt=1).waitpoint
    waiter_wait = park_on(a_run(agent), build)
    watch = schedule_save(Schedule(agent=agent, name="watch", kind="interval", interval_seconds=60,
                                   process_handle=f"run:{build.pk}"), now=NOW)
    build_resume = waitpoint_complete(build_wait.id, payload={}, by="test", now=NOW).waitpoint.resume_run
    assert Waitpoint.objects.get(id=waiter_wait.id).state == WaitState.WAITING  # the build goes on in its resume
    Run.objects.filter(id=build_resume.id).update(state=RunState.RUNNING, attempt=1, fencing_token=1)
    end(build_resume, output={"artifact": "after approval"})
    payload = resume_input(waiter_wait)["payload"]
    assert payload["run"] == build.pk and payload["ended_run"] == build_resume.pk
    assert payload["output"] == {"artifact": "after approval"}
    assert Schedule.objects.get(id=watch.pk).deleted_at is not None


def test_waiting_on_a_run_whose_resume_already_ended_completes_at_once(agent):
    build = a_run(agent, session="s2")
    build_wait = waitpoint_create(build.pk, WaitIn(kind="token", timeout_seconds=600), now=NOW, attempt=1).waitpoint
    build_resume = waitpoint_complete(build_wait.id, payload={}, by="test", now=NOW).waitpoint.resume_run
    Run.objects.filter(id=build_resume.id).update(state=RunState.SUCCEEDED, output={"v": 2})
    waitpoint = park_on(a_run(agent), build)
    assert resume_input(waitpoint)["payload"]["ended_run"] == build_resume.pk


def test_what_cannot_be_waited_for_is_refused_and_parks_nothing(agent):
    waiter = a_run(agent)
    schedule = schedule_save(Schedule(agent=agent, name="nightly", kind="interval", interval_seconds=3600), now=NOW)
    other_space = Workspace.objects.create(slug="other", name="Other")
    stranger = a_run(Agent.objects.create(name="theirs", adapter="echo", workspace=other_space))
    refusals = [(a_run(agent, schedule=schedule), "belongs to a schedule"), (waiter, "its own end"),
                (stranger, "does not exist in this workspace")]
    for watched, reason in refusals:
        with pytest.raises(WaitRefused, match=reason):
            park_on(waiter, watched)
    assert Run.objects.get(id=waiter.id).state == RunState.RUNNING and not waiter.waitpoints.exists()


def test_a_background_run_replies_to_the_session_that_started_it(agent):
    asker = a_run(agent, state=RunState.SUCCEEDED, session="chat-1")
    build = background_run_start(agent, input="build release 42", now=NOW, reply_to=ReplyTo(asker))
    # A person asked over the API: no agent acted, and no self-wake is spent.
    assert (build.parent_run_id, build.chain_id, build.actor_id, build.wakeup_count) == (
        asker.pk, asker.chain_id, None, asker.wakeup_count)
    reply = Waitpoint.objects.get(watched_run=build)
    assert reply.run_id == asker.pk and reply.parks_run is False and reply.session_id == "chat-1"
    assert reply.timeout_at == NOW + timedelta(days=30)
    Run.objects.filter(id=build.id).update(state=RunState.RUNNING, attempt=1, fencing_token=1)
    end(build, output={"released": "42"})
    received = resume_input(reply)
    assert received["ok"] is True and received["payload"]["output"] == {"released": "42"}
    resume = Waitpoint.objects.get(id=reply.id).resume_run
    assert (resume.session_id, resume.parent_run_id, resume.chain_id) == ("chat-1", build.pk, asker.chain_id)
    assert Run.objects.get(id=asker.id).state == RunState.SUCCEEDED  # the asker never parked


def test_cancelling_a_reply_leaves_the_asking_run_alone(agent):
    asker = a_run(agent, session="chat-1")
    waitpoint_create(asker.pk, WaitIn(kind="token", timeout_seconds=600), now=NOW, attempt=1)
    build = background_run_start(agent, input="build", now=NOW, reply_to=ReplyTo(asker))
    reply = Waitpoint.objects.get(watched_run=build)
    assert waitpoint_cancel(reply.id, now=NOW).fresh
    assert Run.objects.get(id=asker.id).state == RunState.WAITING  # still parked on its own token
    assert Waitpoint.objects.get(id=reply.id).resume_run is None


def test_a_reply_to_a_run_of_another_workspace_is_refused(agent):
    from triggers.background import BackgroundRefused
    other = Agent.objects.create(name="theirs", adapter="echo",
                                 workspace=Workspace.objects.create(slug="other", name="Other"))
    with pytest.raises(BackgroundRefused, match="not in this workspace"):
        background_run_start(agent, input="x", now=NOW, reply_to=ReplyTo(a_run(other)))
    assert not Run.objects.filter(trigger=Trigger.MANUAL, input="x").exists()

"""Every way a run ends plans an after-completion schedule's next tick, once.

The beat leaves such a schedule without a ``next_fire_at`` while its run is in
flight; whatever ends the run (the worker's outcome, a skip at the claim, a
run that cannot start, the reaper, its fallback) goes through one hook,
``runs.services.ended.run_ended``. A run that ended anywhere else stalled the
schedule for good.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from runs.models import Run, RunState, SkipReason, Trigger
from runs.services.claim import run_claim
from runs.services.dispatch import DispatchRequest, run_dispatch
from runs.services.dlq import run_replay
from runs.services.execute import run_execute
from runs.services.housekeeping import runs_reap_expired_leases
from runs.services.manual import run_now
from runs.services.outcome import record_success
from schedules.models import Agent, Schedule
from schedules.services import schedule_save
from triggers.firing import schedules_fire_due
from triggers.waits import WaitIn, waitpoint_complete, waitpoint_create
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db
INTERVAL = timedelta(minutes=10)


def chain(agent: Agent, **fields: object) -> Schedule:
    return schedule_save(Schedule(agent=agent, name=f"chain-{agent.name}", kind="interval",
                                  interval_seconds=int(INTERVAL.total_seconds()), interval_mode="after_completion",
                                  **fields), now=timezone.now())


def fire(schedule: Schedule) -> Run:
    """The beat fires the schedule's due tick; the schedule then waits for that run."""
    schedule.refresh_from_db()
    due = schedule.next_fire_at
    assert due is not None, f"{schedule} has no next tick"
    schedules_fire_due(now=due, batch=10)
    schedule.refresh_from_db()
    assert schedule.next_fire_at is None, "in flight: nothing planned yet"
    return Run.objects.filter(schedule=schedule).latest("tick_at")


def expire(run: Run) -> datetime:
    return Run.objects.get(id=run.id).lease_expires_at + timedelta(seconds=1)


def occupy(agent: Agent, *, session: str = "") -> None:
    """A run of another schedule on the same agent (and session), running now."""
    other = Schedule.objects.create(agent=agent, name="other", cron="0 0 1 1 *", concurrency_scope="agent")
    now = timezone.now()
    run = run_dispatch(other, DispatchRequest(trigger=Trigger.MANUAL, tick_at=now), now=now, publish=False)
    if session:
        Run.objects.filter(id=run.id).update(session_id=session)
    assert run_claim(run.id, owner="busy", now=now) is not None


def succeed(run: Run, agent: Agent) -> None:
    assert run_execute(run.id, owner="w", now=timezone.now()) == RunState.SUCCEEDED


def fail(run: Run, agent: Agent) -> None:
    Agent.objects.filter(id=agent.id).update(config={"fail": "permanent"})
    assert run_execute(run.id, owner="w", now=timezone.now()) == RunState.FAILED


def die(run: Run, agent: Agent) -> None:
    Agent.objects.filter(id=agent.id).update(config={"fail": "transient"})
    Run.objects.filter(id=run.id).update(max_attempts=1)
    assert run_execute(run.id, owner="w", now=timezone.now()) == RunState.DEAD


def cancel(run: Run, agent: Agent) -> None:
    claim = run_claim(run.id, owner="w", now=timezone.now(), intent="x")
    assert record_success(claim, {"stopped": True}, cancelled=True) == RunState.CANCELLED


def skip_overlap_agent(run: Run, agent: Agent) -> None:
    occupy(agent)
    assert run_execute(run.id, owner="w", now=timezone.now()) is None
    assert Run.objects.get(id=run.id).skip_reason == SkipReason.OVERLAP


def skip_overlap_session(run: Run, agent: Agent) -> None:
    Run.objects.filter(id=run.id).update(concurrency_scope="session")
    occupy(agent, session=run.session_id)
    assert run_execute(run.id, owner="w", now=timezone.now()) is None
    assert Run.objects.get(id=run.id).skip_reason == SkipReason.OVERLAP


def skip_inactive(run: Run, agent: Agent) -> None:
    Agent.objects.filter(id=agent.id).update(is_active=False)
    assert run_execute(run.id, owner="w", now=timezone.now()) == RunState.SKIPPED


def bad_template(run: Run, agent: Agent) -> None:
    Schedule.objects.filter(id=run.schedule_id).update(input_template="{{nope}}")
    assert run_execute(run.id, owner="w", now=timezone.now()) == RunState.FAILED


def reaped_dead(run: Run, agent: Agent) -> None:
    Run.objects.filter(id=run.id).update(max_attempts=1)
    assert run_claim(run.id, owner="gone", now=timezone.now()) is not None  # died before the call
    assert runs_reap_expired_leases(now=expire(run)) == 1


def reaped_unknown(run: Run, agent: Agent) -> None:
    Agent.objects.filter(id=agent.id).update(adapter="message")  # does not dedupe by key
    assert run_claim(run.id, owner="gone", now=timezone.now(), intent="x") is not None  # died mid-call
    assert runs_reap_expired_leases(now=expire(run)) == 1


def reaped_unsettleable(run: Run, agent: Agent) -> None:
    assert run_claim(run.id, owner="gone", now=timezone.now(), intent="x") is not None
    Agent.objects.filter(id=agent.id).update(adapter="bogus")
    assert runs_reap_expired_leases(now=expire(run)) == 0  # settled by the fallback, not reaped


def replayed(run: Run, agent: Agent) -> None:
    die(run, agent)
    Agent.objects.filter(id=agent.id).update(config={})
    Schedule.objects.filter(id=run.schedule_id).update(next_fire_at=None, next_tick_at=None)  # as if it stalled
    run_replay(run.id, now=timezone.now())
    succeed(run, agent)


ENDINGS: dict[str, tuple[Callable[[Run, Agent], None], str]] = {
    "succeeded": (succeed, RunState.SUCCEEDED),
    "failed": (fail, RunState.FAILED),
    "dead": (die, RunState.DEAD),
    "cancelled": (cancel, RunState.CANCELLED),
    "skipped by the overlap policy, agent scope": (skip_overlap_agent, RunState.SKIPPED),
    "skipped by the overlap policy, session scope": (skip_overlap_session, RunState.SKIPPED),
    "skipped, inactive agent": (skip_inactive, RunState.SKIPPED),
    "failed, template": (bad_template, RunState.FAILED),
    "dead, reaped": (reaped_dead, RunState.DEAD),
    "unknown, reaped": (reaped_unknown, RunState.UNKNOWN),
    "failed, reaper fallback": (reaped_unsettleable, RunState.FAILED),
    "replayed": (replayed, RunState.SUCCEEDED),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_every_ending_plans_the_next_tick_from_when_the_run_finished(ending):
    end, state = ENDINGS[ending]
    agent = Agent.objects.create(name="worker", adapter="echo")
    schedule = chain(agent, concurrency_scope="agent" if "agent scope" in ending else "schedule")
    run = fire(schedule)
    end(run, agent)
    run.refresh_from_db()
    schedule.refresh_from_db()
    assert run.state == state, run
    assert run.finished_at is not None
    assert schedule.next_tick_at == run.finished_at + INTERVAL, f"{ending}: next tick {schedule.next_tick_at}"
    assert schedule.next_fire_at is not None


def test_a_run_that_ends_beside_the_tick_in_flight_plans_nothing():
    """A manual run, or a replay of an older tick, ending while the latest tick runs, leaves it to that run."""
    agent = Agent.objects.create(name="worker", adapter="echo", config={"fail": "transient"})
    schedule = chain(agent, max_attempts=1, overlap_policy="allow", max_concurrent=5)
    first = fire(schedule)
    assert run_execute(first.id, owner="w", now=timezone.now()) == RunState.DEAD  # plans the second tick
    Agent.objects.filter(id=agent.id).update(config={})
    # The second tick, dispatched as the beat does: the schedule waits for its run.
    schedule.refresh_from_db()
    tick = schedule.next_tick_at
    second = run_dispatch(schedule, DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=tick), now=tick, publish=False)
    Schedule.objects.filter(id=schedule.id).update(next_fire_at=None, next_tick_at=None, last_tick_at=tick)

    manual = run_now(schedule, now=timezone.now())
    assert run_execute(manual.id, owner="w", now=timezone.now()) == RunState.SUCCEEDED
    run_replay(first.id, now=timezone.now())
    assert run_execute(first.id, owner="w", now=timezone.now()) == RunState.SUCCEEDED
    schedule.refresh_from_db()
    assert schedule.next_fire_at is None, "planned while the second tick was still in flight"

    assert run_execute(second.id, owner="w", now=timezone.now()) == RunState.SUCCEEDED
    second.refresh_from_db()
    schedule.refresh_from_db()
    assert schedule.next_tick_at == second.finished_at + INTERVAL


def test_a_tick_that_parks_plans_the_next_from_its_last_resumes_end():
    """A parked run has not ended (docs/autonomy.md): the schedule waits through the park and its resumes."""
    agent = Agent.objects.create(name="worker", adapter="echo",
                                 workspace=Workspace.objects.create(slug="acme", name="Acme"))
    schedule = chain(agent)
    run = fire(schedule)
    assert run_claim(run.id, owner="w", now=timezone.now()) is not None
    spec = WaitIn(kind="token", timeout_seconds=600)
    first = waitpoint_create(run.id, spec, now=timezone.now(), attempt=1).waitpoint
    resume = waitpoint_complete(first.id, payload={"ok": 1}, by="test", now=timezone.now()).waitpoint.resume_run
    assert run_claim(resume.id, owner="w", now=timezone.now()) is not None
    second = waitpoint_create(resume.id, spec, now=timezone.now(), attempt=1).waitpoint  # the resume parks too
    schedule.refresh_from_db()
    assert schedule.next_fire_at is None, "planned at a park: the tick's work is not done"

    last = waitpoint_complete(second.id, payload={}, by="test", now=timezone.now()).waitpoint.resume_run
    assert run_execute(last.id, owner="w", now=timezone.now()) == RunState.SUCCEEDED
    last.refresh_from_db()
    schedule.refresh_from_db()
    assert schedule.next_tick_at == last.finished_at + INTERVAL
    assert schedule.next_fire_at is not None


def test_a_tick_whose_resume_fails_counts_toward_the_auto_pause():
    agent = Agent.objects.create(name="worker", adapter="echo",
                                 workspace=Workspace.objects.create(slug="acme", name="Acme"))
    schedule = chain(agent, failure_limit=2)
    for _ in range(2):
        run = fire(schedule)
        assert run_claim(run.id, owner="w", now=timezone.now()) is not None
        wait = waitpoint_create(run.id, WaitIn(kind="token", timeout_seconds=600), now=timezone.now(),
                                attempt=1).waitpoint
        resume = waitpoint_complete(wait.id, payload={}, by="test", now=timezone.now()).waitpoint.resume_run
        Agent.objects.filter(id=agent.id).update(config={"fail": "permanent"})
        assert run_execute(resume.id, owner="w", now=timezone.now()) == RunState.FAILED
        Agent.objects.filter(id=agent.id).update(config={})
        Schedule.objects.filter(id=schedule.id).update(next_fire_at=timezone.now())  # due again at once
    schedule.refresh_from_db()
    assert schedule.consecutive_failures == 2
    assert schedule.paused and "2 consecutive failures" in schedule.paused_reason

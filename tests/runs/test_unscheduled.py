"""Runs that belong to no schedule (events, wakeups, resumes): the worker path needs none.

Each carries its own policy (timeout, attempts, backoff, overlap, session)
from dispatch, and its trigger's identity makes it one row.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from runs.models import AgentCall, Run, RunState, Trigger
from runs.services.claim import run_claim
from runs.services.dispatch import RunPolicy, UnscheduledRequest, run_dispatch_unscheduled
from runs.services.execute import run_execute
from runs.services.housekeeping import runs_reap_expired_leases
from schedules.models import Agent


def dispatch(agent: Agent, identity: str, **policy: object) -> Run | None:
    request = UnscheduledRequest(trigger=Trigger.EVENT, identity=identity, input=f"event {identity}",
                                 policy=RunPolicy(**policy))  # type: ignore[arg-type]
    with transaction.atomic():
        return run_dispatch_unscheduled(agent, request, now=timezone.now())


@pytest.mark.django_db(transaction=True)
def test_a_run_without_a_schedule_is_executed_by_a_real_worker(stack, waiter):
    agent = Agent.objects.create(name="reactive", adapter="echo")
    run = dispatch(agent, "evt-1", timeout_seconds=30, max_attempts=2)
    assert run is not None and run.schedule_id is None
    assert dispatch(agent, "evt-1") is None  # the same identity: already dispatched
    stack.worker()

    def finished() -> bool:
        run.refresh_from_db()
        return run.state == RunState.SUCCEEDED

    waiter(finished, timeout=60, what=f"run {run.pk} to succeed")
    assert run.output["echo"] == "event evt-1" and run.trigger == Trigger.EVENT
    assert (run.timeout_seconds, run.max_attempts, run.attempt) == (30, 2, 1)
    assert Run.objects.filter(agent=agent).count() == 1


@pytest.mark.django_db
def test_a_failing_run_without_a_schedule_retries_then_dead_letters_on_its_own_policy():
    agent = Agent.objects.create(name="flaky", adapter="echo", config={"fail": "transient"})
    run = dispatch(agent, "evt-2", max_attempts=2, retry_backoff_seconds=1, retry_backoff_max_seconds=1)
    now = timezone.now()
    assert run_execute(run.id, owner="w", now=now) == RunState.PENDING
    run.refresh_from_db()
    assert now + timedelta(seconds=0.5) <= run.not_before <= now + timedelta(seconds=1)
    assert run_execute(run.id, owner="w", now=run.not_before) == RunState.DEAD


@pytest.mark.django_db
def test_runs_without_a_schedule_do_not_count_against_each_other():
    agent = Agent.objects.create(name="parallel", adapter="echo")
    first, second = dispatch(agent, "a"), dispatch(agent, "b")
    now = timezone.now()
    assert run_claim(first.id, owner="w1", now=now, intent="a") is not None
    assert run_claim(second.id, owner="w2", now=now, intent="b") is not None  # each is its own scope


@pytest.mark.django_db
def test_the_reaper_settles_a_run_without_a_schedule():
    agent = Agent.objects.create(name="vanished", adapter="echo")
    run = dispatch(agent, "evt-3", timeout_seconds=1, max_attempts=1)
    claim = run_claim(run.id, owner="w", now=timezone.now(), intent="x")
    assert claim is not None and AgentCall.objects.filter(run=run).count() == 1
    Run.objects.filter(id=run.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert runs_reap_expired_leases(now=timezone.now()) == 1
    run.refresh_from_db()
    assert run.state == RunState.DEAD

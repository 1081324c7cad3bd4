"""Broker redelivery: an execute message delivered twice runs the agent once.

The Redis broker delivers a message more than once even when nothing crashes
(its visibility timeout runs from reservation, not from the start of the
task). The claim is a compare-and-set on the run's state and fencing token,
so whichever worker loses the race finds nothing to claim. The agent here is a
real HTTP server on loopback that counts deliveries per ``Idempotency-Key``.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from runs.models import AgentCall, CallState, Run, RunState
from runs.services.manual import run_now as schedule_run_now
from scheduler_project.celery import app
from schedules.models import Agent, Schedule
from schedules.services import schedule_save
from tests.adapters.conftest import AgentServer, Reply
from tests.broker import queue_clear

pytestmark = pytest.mark.django_db(transaction=True)

EXECUTE = "runs.execute"
# Celery's own line for a finished task, whatever the task returned or raised.
TASK_DONE = re.compile(r"Task runs\.execute\[([0-9a-f-]+)\] (?:succeeded|raised|failed)")


@pytest.fixture
def slow_agent() -> Iterator[AgentServer]:
    """Answers after a second, so a second delivery arrives while the first is in flight."""
    server = AgentServer(Reply(body={"ok": True}, delay=1.0)).start()
    yield server
    server.stop()


@pytest.fixture
def empty_queue() -> None:
    """This test counts messages: drop any left in this run's queue by an earlier test."""
    queue_clear()


def http_schedule(server: AgentServer, name: str) -> Schedule:
    agent = Agent.objects.create(name=name, adapter="http", config={"url": f"{server.url}/run"})
    # A yearly cron that no beat serves here: every run below is started on demand,
    # several at once, so the overlap policy lets them all run.
    return schedule_save(Schedule(agent=agent, name="yearly", cron="0 0 1 1 *", timeout_seconds=30,
                                  overlap_policy="allow", max_concurrent=10), now=timezone.now())


def finished_tasks(*workers) -> list[str]:
    return [task for worker in workers for task in TASK_DONE.findall(worker.log.read_text())]


def test_two_copies_on_two_workers_run_the_agent_once(stack, waiter, slow_agent, empty_queue):
    schedule = http_schedule(slow_agent, "redelivered")
    workers = [stack.worker("w1"), stack.worker("w2")]

    runs = []
    for _ in range(3):
        run = schedule_run_now(schedule, now=timezone.now())  # copy 1, published on commit
        app.send_task(EXECUTE, args=[run.pk])  # copy 2: the broker's redelivery
        runs.append(run)
    waiter(lambda: len(finished_tasks(*workers)) == 2 * len(runs), timeout=60,
           what="both copies of every message to be consumed")

    for run in runs:
        run.refresh_from_db()
        assert (run.state, run.attempt, run.fencing_token) == (RunState.SUCCEEDED, 1, 1), run
        assert slow_agent.per_key[run.idempotency_key] == 1, f"{run}: the agent ran more than once"
        calls = AgentCall.objects.filter(run=run).values_list("attempt", "fencing_token", "state")
        assert list(calls) == [(1, 1, CallState.SUCCEEDED)]
    assert len(slow_agent.deliveries) == len(runs)
    # Prefetch 1 and one slot per worker: while one worker held a copy, the other took its twin.
    assert all(finished_tasks(worker) for worker in workers), "one worker consumed every copy"


def test_a_copy_delivered_after_the_run_succeeded_changes_nothing(stack, waiter, slow_agent, empty_queue):
    schedule = http_schedule(slow_agent, "late-copy")
    worker = stack.worker()
    run = schedule_run_now(schedule, now=timezone.now())
    waiter(lambda: Run.objects.filter(pk=run.pk, state=RunState.SUCCEEDED).exists(), timeout=60,
           what="the first delivery to succeed")
    run.refresh_from_db()
    first = (run.state, run.attempt, run.fencing_token, run.finished_at, run.output, run.lease_owner)

    late = app.send_task(EXECUTE, args=[run.pk])  # as after a visibility timeout
    waiter(lambda: late.id in finished_tasks(worker), timeout=60, what="the late copy to be consumed")

    run.refresh_from_db()
    assert (run.state, run.attempt, run.fencing_token, run.finished_at, run.output, run.lease_owner) == first
    assert first[3] - run.started_at < timedelta(seconds=30)
    assert slow_agent.per_key == {run.idempotency_key: 1}
    assert AgentCall.objects.filter(run=run).count() == 1

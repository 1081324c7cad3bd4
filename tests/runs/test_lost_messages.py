"""A message that died with its worker comes back in seconds; one that waits its turn is left alone.

The outbox sweeper sends a pending run again once its message has provably
left the queue (``housekeeping.runs_lost``): the queue is first in, first out,
so a run with more pending runs published after it than there are messages
in the queue cannot still be queued. Busy workers leave every message
counted in the queue, and get no duplicates.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone
from kombu.transport.redis import Channel

from runs.models import Run, RunState, Trigger
from runs.services.claim import _scope_lock_key
from runs.services.dispatch import DispatchRequest, run_dispatch
from runs.services.housekeeping import LOST_AFTER, runs_lost, runs_sweep_outbox
from runs.services.manual import run_now
from schedules.models import Agent, Schedule
from schedules.services import schedule_save
from tests.broker import queue_clear

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    """This run's queue, empty at the start; at the end, the reservations of killed workers dropped."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    queue_clear(client)
    yield client
    for tag, raw in client.hgetall(Channel.unacked_key).items():
        if json.loads(raw)[2] == queue:
            client.hdel(Channel.unacked_key, tag)
            client.zrem(Channel.unacked_index_key, tag)
    queue_clear(client)


def yearly(name: str, **agent_config: object) -> Schedule:
    agent = Agent.objects.create(name=name, adapter="echo", config=agent_config)
    return schedule_save(Schedule(agent=agent, name="yearly", cron="0 0 1 1 *", overlap_policy="allow",
                                  max_concurrent=10), now=timezone.now())


def blocked_backend() -> int | None:
    """The PostgreSQL backend waiting for an advisory lock (the worker's claim), if any."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        row = cursor.fetchone()
    return row[0] if row else None


def test_a_run_whose_worker_died_holding_its_message_is_sent_again_at_once(stack, waiter, broker):
    schedule = yearly("orphaned")
    run = Run(schedule=schedule, schedule_id=schedule.id, concurrency_scope="schedule")
    key = _scope_lock_key(run)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])  # the worker's claim will wait on this
    run = run_now(schedule, now=timezone.now())
    holder = stack.worker("holder")
    backend = waiter(blocked_backend, timeout=60, what="the worker to reserve the message and start its claim")
    stack.kill(holder)  # the node dies with the message reserved and unclaimed
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend])  # and its connection with it
        cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
    run.refresh_from_db()
    assert run.state == RunState.PENDING and run.published_at is not None
    assert broker.llen(settings.CELERY_TASK_DEFAULT_QUEUE) == 0  # reserved by the dead worker, not queued

    stack.worker("rescuer")
    soon = timezone.now() + LOST_AFTER  # far inside REPUBLISH_AFTER and the broker's visibility timeout
    assert soon < run.published_at + timedelta(seconds=settings.TICKWISE["REPUBLISH_AFTER"])
    assert runs_lost(now=soon) == [run.id]
    assert runs_sweep_outbox(now=soon) == 1
    waiter(lambda: Run.objects.filter(pk=run.pk, state=RunState.SUCCEEDED).exists(), timeout=60,
           what="the run to be executed by the live worker")


def test_busy_workers_get_no_duplicates_and_only_a_lost_message_is_sent_again(stack, waiter, broker):
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    long_run = run_now(yearly("long", sleep=60), now=timezone.now())
    stack.worker("busy", concurrency=1)
    waiter(lambda: Run.objects.filter(pk=long_run.pk, state=RunState.RUNNING).exists(), timeout=60,
           what="the only worker process to be busy")
    waiting = [run_now(yearly(f"waiting-{i}"), now=timezone.now()) for i in range(3)]
    assert broker.llen(queue) == 3

    later = timezone.now() + timedelta(seconds=60)  # long past LOST_AFTER: every one looks overdue
    assert runs_lost(now=later) == []
    assert runs_sweep_outbox(now=later) == 0
    # Nor after a backlog longer than REPUBLISH_AFTER: the count, not a delay, decides.
    assert runs_sweep_outbox(now=timezone.now() + timedelta(hours=1)) == 0
    assert broker.llen(queue) == 3, "a message waiting its turn was sent again"

    broker.rpop(queue)  # the broker loses the oldest message (the next one a worker would take)
    assert runs_lost(now=later) == [waiting[0].id]
    assert runs_sweep_outbox(now=later) == 1
    assert broker.llen(queue) == 3


def test_a_tick_queued_behind_urgent_runs_taken_first_is_not_sent_again(broker):
    """Each lane is first in, first out (``runs.lanes``), the queue as a whole is not: the count is per lane."""
    now = timezone.now()
    tick = run_dispatch(yearly("routine"), DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=now), now=now)
    urgent = run_now(yearly("urgent"), now=timezone.now())  # published after the tick, taken before it
    assert json.loads(broker.rpop(settings.CELERY_TASK_DEFAULT_QUEUE))["headers"]["argsrepr"] == f"[{urgent.id}]"
    # The urgent run's worker died before its claim; the tick still waits its turn in its own lane.
    later = timezone.now() + timedelta(seconds=60)
    assert runs_lost(now=later) == [urgent.id]
    assert tick is not None and Run.objects.get(id=tick.id).state == RunState.PENDING


@pytest.mark.django_db
def test_without_a_queue_count_the_sweeper_falls_back_to_republish_after(monkeypatch, broker):
    from runs.services import housekeeping

    run = run_now(yearly("uncounted"), now=timezone.now())
    Run.objects.filter(pk=run.pk).update(published_at=timezone.now())  # as if its message had gone out
    monkeypatch.setattr(housekeeping, "queued_by_lane", lambda: None)  # a broker that cannot say
    republish_after = timedelta(seconds=settings.TICKWISE["REPUBLISH_AFTER"])
    assert runs_lost(now=timezone.now() + timedelta(minutes=1)) is None
    assert runs_sweep_outbox(now=timezone.now() + timedelta(minutes=1)) == 0
    assert runs_sweep_outbox(now=timezone.now() + republish_after + timedelta(seconds=1)) == 1

"""Two lanes in one queue (``runs.lanes``): a run someone waits on is taken before the ticks queued ahead of it.

The messages are looked at in the broker's own lists, then a real worker with
one process takes them in the order Redis hands them out.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from runs.lanes import ROUTINE, URGENT
from runs.models import TERMINAL_STATES, Run, Trigger
from runs.services.dispatch import DispatchRequest, runs_dispatch_many
from runs.services.manual import run_now
from schedules.models import Agent, Schedule
from schedules.services import schedule_save
from tests.broker import STEPS, broker, queue_clear, queue_keys

pytestmark = pytest.mark.django_db(transaction=True)


def busy_schedule() -> Schedule:
    agent = Agent.objects.create(name="laned", adapter="echo")
    return schedule_save(Schedule(agent=agent, name="minutely", cron="0 0 1 1 *", overlap_policy="allow",
                                  max_concurrent=100), now=timezone.now())


def ticks(schedule: Schedule, count: int) -> list[Run]:
    """``count`` scheduled ticks of the past, published as one beat batch."""
    now = timezone.now()
    items = [(schedule, DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=now - timedelta(minutes=count - n)))
             for n in range(count)]
    runs = runs_dispatch_many(items, now=now)
    assert all(run is not None for run in runs)
    return [run for run in runs if run is not None]


def ids_in(key: str) -> list[int]:
    """The run ids of a list's messages, the next a worker takes first."""
    return [json.loads(json.loads(raw)["headers"]["argsrepr"])[0] for raw in reversed(broker().lrange(key, 0, -1))]


def test_ticks_go_in_the_routine_lane_and_a_manual_run_in_the_urgent_one():
    queue_clear()
    schedule = busy_schedule()
    routine = ticks(schedule, 3)
    urgent = run_now(schedule, now=timezone.now())
    keys = dict(zip(STEPS, queue_keys()))
    assert ids_in(keys[URGENT]) == [urgent.id]
    assert ids_in(keys[ROUTINE]) == [run.id for run in routine]  # first in, first out within the lane
    (message,) = map(json.loads, broker().lrange(keys[URGENT], 0, -1))
    assert message["properties"]["priority"] == URGENT
    queue_clear()


def test_a_worker_takes_the_manual_run_before_the_ticks_queued_ahead_of_it(stack, waiter):
    queue_clear()
    schedule = busy_schedule()
    routine = ticks(schedule, 20)
    urgent = run_now(schedule, now=timezone.now())  # published last
    stack.worker("laned", concurrency=1)
    waiter(lambda: not Run.objects.filter(schedule=schedule).exclude(state__in=TERMINAL_STATES).exists(),
           timeout=120, what="the worker to run every queued run")
    started = list(Run.objects.filter(schedule=schedule).order_by("started_at", "id").values_list("id", flat=True))
    assert started == [urgent.id, *(run.id for run in routine)], started

"""Housekeeping pulses leave their last outcome where an operator reads it (django-celery-results)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_results.models import TaskResult

from runs.models import Run, RunState, Trigger
from runs.pulses import ensure_pulses
from runs.services.dispatch import DispatchRequest, run_dispatch
from schedules.models import Agent, Schedule

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_sweeper_records_what_it_published_and_runs_record_nothing(stack, waiter):
    ensure_pulses(IntervalSchedule, PeriodicTask)  # the test database is flushed between tests
    agent = Agent.objects.create(name="swept")
    schedule = Schedule.objects.create(agent=agent, name="yearly", cron="0 0 1 1 *")
    tick = timezone.now() - timedelta(minutes=1)
    # Committed and never published: the outbox sweeper's work.
    run = run_dispatch(schedule, DispatchRequest(trigger=Trigger.MANUAL, tick_at=tick), now=tick, publish=False)
    Run.objects.filter(id=run.id).update(created_at=tick)
    stack.worker()
    stack.beat()

    waiter(lambda: Run.objects.filter(id=run.id, state=RunState.SUCCEEDED).exists(), timeout=60,
           what="the swept run to succeed")
    sweeps = TaskResult.objects.filter(task_name="runs.sweep_outbox", status="SUCCESS")
    waiter(lambda: sweeps.filter(result="1").exists(), timeout=30, what="the sweep's result to be recorded")
    assert {json.loads(result) for result in sweeps.values_list("result", flat=True)} <= {0, 1}
    assert not TaskResult.objects.filter(task_name="runs.execute").exists()  # the ledger is the run's record

"""A worker SIGKILLed while its run is parking leaves no run stuck and no waitpoint behind.

The park (the waitpoint row and the run's move to ``waiting``) is one
transaction; the fault point ``waitpoint.park`` kills the worker's pool
child inside it. The transaction dies with the connection, the run is still
``running`` under a lease, and the lease reaper settles it (``unknown``: a
python callable does not dedupe by key).
"""
from __future__ import annotations

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from runs.models import ErrorCategory, Run, RunState, Trigger
from runs.pulses import ensure_pulses
from runs.services.dispatch import RunPolicy, UnscheduledRequest, run_dispatch_unscheduled
from schedules.models import Agent
from waitpoints.models import Waitpoint

pytestmark = pytest.mark.django_db(transaction=True)
WORKER_ENV = {"TICKWISE_PYTHON_CALLABLES": "tests.waitpoints.agents", "TICKWISE_FAULTS": "waitpoint.park",
              "TICKWISE_LEASE_MARGIN": "1"}


def test_a_worker_killed_while_parking_leaves_the_run_to_the_reaper_and_no_waitpoint(stack, waiter):
    ensure_pulses(IntervalSchedule, PeriodicTask)  # the lease reaper
    agent = Agent.objects.create(name="parker", adapter="python",
                                 config={"callable": "tests.waitpoints.agents:park_on_token"})
    request = UnscheduledRequest(trigger=Trigger.MANUAL, identity="crash", input="park",
                                 policy=RunPolicy(timeout_seconds=3, max_attempts=2))
    run = run_dispatch_unscheduled(agent, request, now=timezone.now())
    assert run is not None
    worker = stack.worker(extra_env=WORKER_ENV)
    stack.beat()
    waiter(lambda: "signal 9" in worker.log.read_text(), timeout=60, what="the pool child to die parking")
    settled = waiter(lambda: Run.objects.filter(id=run.id).exclude(state=RunState.RUNNING)
                     .exclude(state=RunState.PENDING).first(), timeout=90, what="the reaper to settle the run")
    assert settled.state == RunState.UNKNOWN and settled.error_category == ErrorCategory.CRASHED
    assert not Waitpoint.objects.exists()  # the park rolled back whole
    assert not Run.objects.filter(state__in=[RunState.WAITING, RunState.RUNNING, RunState.PENDING]).exists()

"""The walking skeleton, end to end: real beat and worker processes, real PostgreSQL and Redis."""
from __future__ import annotations

import pytest
from django.utils import timezone

from runs.models import Run, RunState
from schedules.models import Agent, Schedule
from schedules.services import schedule_save

pytestmark = pytest.mark.django_db(transaction=True)


def test_scheduled_run_goes_from_pending_to_succeeded(stack, waiter):
    agent = Agent.objects.create(name="e2e", adapter="echo", config={"sleep": 1.0})
    schedule = schedule_save(
        Schedule(agent=agent, name="every-2s", kind="interval", interval_seconds=2,
                 input_template="tick {{run_number}} of {{schedule}}"),
        now=timezone.now(),
    )
    stack.worker()
    stack.beat()

    running = waiter(lambda: Run.objects.filter(schedule=schedule, state=RunState.RUNNING).first(),
                     timeout=60, what="a run of the schedule to start")
    assert running.published_at is not None and running.attempt == 1

    def finished():
        running.refresh_from_db()
        return running.state == RunState.SUCCEEDED

    waiter(finished, timeout=30, what=f"run {running.pk} to succeed")
    assert running.output["echo"] == f"tick {running.run_number} of e2e/every-2s"
    assert running.trigger == "schedule" and running.finished_at >= running.started_at
    # Beat keeps firing: one row per tick, never two.
    waiter(lambda: Run.objects.filter(schedule=schedule).count() >= 3, timeout=30, what="three ticks")
    ticks = list(Run.objects.filter(schedule=schedule).values_list("tick_at", flat=True))
    assert len(ticks) == len(set(ticks))


def test_run_now_command_waits_for_the_outcome(stack):
    import io
    import json

    from django.core.management import call_command

    agent = Agent.objects.create(name="manual", adapter="echo")
    schedule = schedule_save(Schedule(agent=agent, name="paused", cron="0 0 1 1 *", paused=True,
                                      input_template="by hand"), now=timezone.now())
    stack.worker()
    out = io.StringIO()
    call_command("run_now", "manual/paused", "--wait", "--json", "--timeout", "60", stdout=out)
    result = json.loads(out.getvalue())
    assert result["state"] == "succeeded" and result["trigger"] == "manual"
    assert result["output"]["echo"] == "by hand"
    assert Run.objects.get(pk=result["id"]).schedule_id == schedule.pk

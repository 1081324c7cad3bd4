"""One bad row never stops a housekeeping pass: it is settled visibly, once, and the pass goes on."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from runs import publish
from runs.models import ErrorCategory, Run, RunState, Trigger
from runs.services.claim import run_claim
from runs.services.dispatch import DispatchRequest, run_dispatch
from runs.services.housekeeping import runs_purge_finished, runs_reap_expired_leases, runs_sweep_outbox
from schedules.models import Agent, Schedule

pytestmark = pytest.mark.django_db


@pytest.fixture
def errors() -> Iterator[list[logging.LogRecord]]:
    """What the housekeeping logged at ERROR (its logger does not propagate to the root)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("tickwise.housekeeping")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def started(agent: Agent, name: str, *, intent: bool = True) -> Run:
    """A run whose worker claimed it (and called the agent, with ``intent``) and then vanished."""
    schedule = Schedule.objects.create(agent=agent, name=name, cron="0 0 1 1 *")
    now = timezone.now()
    run = run_dispatch(schedule, DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=now), now=now, publish=False)
    assert run_claim(run.id, owner="gone", now=now, intent="x" if intent else None) is not None
    return run


def test_an_agent_with_an_unknown_adapter_does_not_stop_the_reaper(errors):
    good = Agent.objects.create(name="good", adapter="echo")
    bogus = Agent.objects.create(name="bogus", adapter="bogus")  # saved through the ORM: never validated
    first = started(good, "first")
    poisoned = started(bogus, "poisoned")
    last = started(good, "last")
    later = timezone.now() + timedelta(hours=1)

    assert runs_reap_expired_leases(now=later) == 2
    states = dict(Run.objects.values_list("id", "state"))
    assert states[first.id] == states[last.id] == RunState.PENDING  # retried: echo dedupes by key
    poisoned.refresh_from_db()
    assert (poisoned.state, poisoned.error_category) == (RunState.FAILED, ErrorCategory.CONFIG)
    assert "no adapter for kind 'bogus'" in poisoned.error_message
    assert poisoned.finished_at is not None and poisoned.lease_expires_at is None
    assert len(errors) == 1 and f"run {poisoned.id}" in errors[0].getMessage()

    assert runs_reap_expired_leases(now=later) == 0
    assert len(errors) == 1, "the settled row was met again"


def test_a_run_that_cannot_be_published_does_not_stop_the_sweeper(monkeypatch, errors):
    agent = Agent.objects.create(name="good", adapter="echo")
    schedule = Schedule.objects.create(agent=agent, name="hourly", cron="0 * * * *")
    t0 = timezone.now() - timedelta(minutes=1)
    runs = [run_dispatch(schedule, DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=t0 + timedelta(seconds=i)),
                         now=t0, publish=False) for i in range(3)]
    poisoned = runs[1]
    sender = publish._execute_sender

    def refusing(producer):
        send = sender(producer)

        def each(run_id: int, timeout: int) -> None:
            if run_id == poisoned.id:
                raise TypeError("cannot encode this run's message")
            send(run_id, timeout)
        return each

    monkeypatch.setattr(publish, "_execute_sender", refusing)
    assert runs_sweep_outbox(now=timezone.now() + timedelta(seconds=10)) == 2  # past the on-commit grace
    states = {run.id: Run.objects.get(id=run.id) for run in runs}
    assert all(states[run.id].published_at is not None for run in runs if run != poisoned)
    assert (states[poisoned.id].state, states[poisoned.id].error_category) == (RunState.FAILED, ErrorCategory.CONFIG)
    assert "cannot encode" in states[poisoned.id].error_message
    assert len(errors) == 1


def test_a_run_that_cannot_be_deleted_does_not_stop_retention(errors):
    agent = Agent.objects.create(name="good", adapter="echo")
    schedule = Schedule.objects.create(agent=agent, name="hourly", cron="0 * * * *")
    long_ago = timezone.now() - timedelta(days=400)
    runs = [run_dispatch(schedule, DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=long_ago + timedelta(hours=i)),
                         now=long_ago, publish=False) for i in range(5)]
    Run.objects.update(state=RunState.SUCCEEDED, finished_at=long_ago)
    held = runs[2]
    with connection.cursor() as cursor:  # a row elsewhere that still refers to one run
        cursor.execute(f"CREATE TABLE retention_hold (run_id bigint REFERENCES {Run._meta.db_table}(id))")
        cursor.execute("INSERT INTO retention_hold VALUES (%s)", [held.id])

    assert runs_purge_finished(now=timezone.now(), keep_days=90) == 4
    assert list(Run.objects.values_list("id", flat=True)) == [held.id]
    assert len(errors) == 1 and str(held.id) in errors[0].getMessage()

"""The ledger's uniqueness lives in PostgreSQL, whatever the caller does."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction

from runs.models import Run, RunState, Trigger
from runs.services.dispatch import DispatchRequest, run_dispatch
from schedules.models import Agent, Schedule

TICK = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 22, 9, 0, 1, tzinfo=UTC)


@pytest.fixture
def schedule(db):
    agent = Agent.objects.create(name="reporter")
    return Schedule.objects.create(agent=agent, name="daily", cron="0 9 * * *")


def row(schedule, **fields) -> Run:
    defaults = dict(schedule=schedule, agent=schedule.agent, trigger=Trigger.SCHEDULE, tick_at=TICK,
                    idempotency_key=f"k-{Run.objects.count()}")
    return Run(**{**defaults, **fields})


def test_one_row_per_scheduled_tick(schedule):
    row(schedule).save()
    with pytest.raises(IntegrityError), transaction.atomic():
        row(schedule, idempotency_key="other").save()


def test_catchup_and_schedule_share_the_tick_identity(schedule):
    row(schedule).save()
    with pytest.raises(IntegrityError), transaction.atomic():
        row(schedule, trigger=Trigger.CATCHUP, idempotency_key="other").save()


def test_manual_run_at_a_tick_instant_is_its_own_row(schedule):
    row(schedule).save()
    row(schedule, trigger=Trigger.MANUAL, idempotency_key="manual").save()
    assert Run.objects.count() == 2


def test_idempotency_key_is_unique(schedule):
    row(schedule, idempotency_key="same").save()
    with pytest.raises(IntegrityError), transaction.atomic():
        row(schedule, trigger=Trigger.MANUAL, idempotency_key="same").save()


def test_skipped_row_needs_a_reason(schedule):
    with pytest.raises(IntegrityError), transaction.atomic():
        row(schedule, state=RunState.SKIPPED).save()


def test_dispatching_a_tick_twice_gives_one_row(schedule, django_capture_on_commit_callbacks):
    request = DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=TICK)
    with django_capture_on_commit_callbacks() as callbacks:
        first = run_dispatch(schedule, request, now=NOW)
        second = run_dispatch(schedule, request, now=NOW)
    assert first is not None and second is None
    assert Run.objects.filter(schedule=schedule, tick_at=TICK).count() == 1
    assert len(callbacks) == 1  # only the new row is published
    assert first.lateness_ms == 1000


@pytest.mark.django_db
def test_the_hot_tables_are_vacuumed_sooner_than_the_defaults():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reloptions FROM pg_class WHERE relname IN ('schedules_schedule', 'runs_run')")
        options = dict(cursor.fetchall())
    assert "autovacuum_vacuum_threshold=2000" in options["schedules_schedule"]
    assert "autovacuum_vacuum_scale_factor=0.02" in options["runs_run"]

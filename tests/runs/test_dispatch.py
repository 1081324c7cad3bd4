"""The dispatch service in batches: one row per tick, conflicts are "already dispatched"."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.models import Run, RunState, SkipReason, Trigger
from runs.services.dispatch import DispatchRequest, run_dispatch, runs_dispatch_many
from schedules.models import Agent, Schedule
from tests.broker import queue_clear, queued

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=30, seconds=1)


@pytest.fixture
def schedule(db):
    agent = Agent.objects.create(name="reporter")
    return Schedule.objects.create(agent=agent, name="five", cron="*/5 * * * *", timeout_seconds=42)


def tick(minutes: int, trigger: str = Trigger.CATCHUP, **fields) -> DispatchRequest:
    return DispatchRequest(trigger=trigger, tick_at=T0 + timedelta(minutes=minutes), **fields)


def test_a_batch_inserts_one_row_per_tick_and_reports_existing_ones_as_already_dispatched(
        schedule, django_capture_on_commit_callbacks):
    run_dispatch(schedule, tick(5), now=NOW, publish=False)
    with django_capture_on_commit_callbacks() as published:
        runs = runs_dispatch_many([(schedule, tick(m)) for m in (0, 5, 10)], now=NOW)
    assert [run is None for run in runs] == [False, True, False]
    assert Run.objects.filter(schedule=schedule).count() == 3
    assert all(run.pk and not run._state.adding for run in runs if run)
    assert len(published) == 1  # the batch's new pending runs, after commit, together


def test_run_numbers_count_only_inserted_pending_runs(schedule):
    run_dispatch(schedule, tick(5), now=NOW, publish=False)  # numbered 1 (run_count was 0)
    schedule.run_count = 1
    skipped = tick(0, Trigger.SCHEDULE, state=RunState.SKIPPED, skip_reason=SkipReason.MISSED, missed_count=1)
    runs = runs_dispatch_many([(schedule, skipped), (schedule, tick(5)), (schedule, tick(10)),
                               (schedule, tick(15))], now=NOW, publish=False)
    assert runs[1] is None
    numbers = dict(Run.objects.filter(schedule=schedule).values_list("tick_at", "run_number"))
    assert [numbers[T0 + timedelta(minutes=m)] for m in (0, 5, 10, 15)] == [0, 1, 2, 3]
    assert (runs[2].run_number, runs[3].run_number) == (2, 3)


def test_the_same_tick_twice_in_one_batch_is_one_row(schedule):
    runs = runs_dispatch_many([(schedule, tick(5)), (schedule, tick(5))], now=NOW, publish=False)
    assert runs[0] is not None and runs[1] is None
    assert Run.objects.filter(schedule=schedule).count() == 1


def test_publish_sends_each_run_with_its_schedule_timeout(schedule, django_capture_on_commit_callbacks):
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue_clear(client)
    with django_capture_on_commit_callbacks(execute=True):
        runs = runs_dispatch_many([(schedule, tick(5)), (schedule, tick(10))], now=NOW)
    messages = [json.loads(m) for m in queued(client)]
    queue_clear(client)
    headers = sorted((m["headers"]["argsrepr"], m["headers"]["task"], m["headers"]["timelimit"],
                      m["headers"]["ignore_result"]) for m in messages)
    assert headers == sorted((f"[{run.pk}]", "runs.execute", [52, 42], True) for run in runs)
    assert len({m["headers"]["id"] for m in messages}) == 2
    assert Run.objects.filter(schedule=schedule, published_at__isnull=False).count() == 2


def test_a_batch_of_thousands_is_one_statement(schedule):
    # 3,000 rows of 30 columns would need 90,000 parameters as a VALUES list
    # (PostgreSQL allows 65,535); one array per column needs 30.
    with CaptureQueriesContext(connection) as queries:
        runs = runs_dispatch_many([(schedule, tick(m)) for m in range(3000)], now=NOW, publish=False)
    assert all(runs) and len({run.pk for run in runs}) == 3000
    assert [run.run_number for run in runs[:3]] == [1, 2, 3] and runs[-1].run_number == 3000
    inserts = [q["sql"] for q in queries.captured_queries if "tickwise_run_insert" in q["sql"]]
    assert len(inserts) == 1  # EXECUTE, with its PREPARE the first time on a connection
    assert Run.objects.filter(schedule=schedule).count() == 3000


def test_inserted_rows_carry_every_column_as_save_would(schedule):
    before = datetime.now(UTC)
    [run] = runs_dispatch_many([(schedule, tick(5))], now=NOW, publish=False)
    stored = Run.objects.get(pk=run.pk)
    assert (stored.state, stored.trigger, stored.tick_at, stored.run_number) == (
        RunState.PENDING, Trigger.CATCHUP, T0 + timedelta(minutes=5), 1)
    assert stored.idempotency_key == run.idempotency_key and len(stored.session_id) == 32
    assert (stored.attempt, stored.fencing_token, stored.buffered, stored.input, stored.output) == (
        0, 0, False, "", None)
    assert stored.lateness_ms == 25 * 60 * 1000 + 1000 and stored.period_end == stored.tick_at
    assert before <= stored.created_at <= datetime.now(UTC)  # auto_now_add, on the real clock

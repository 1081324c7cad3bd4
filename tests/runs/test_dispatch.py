"""The dispatch service in batches: one row per tick, conflicts are "already dispatched"."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from runs.models import Run, RunState, SkipReason, Trigger
from runs.services.dispatch import DispatchRequest, run_dispatch, runs_dispatch_many
from schedules.models import Agent, Schedule

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=timezone.utc)
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


def test_publish_sends_each_run_with_its_schedule_timeout(schedule, django_capture_on_commit_callbacks,
                                                           monkeypatch):
    from runs import publish

    sent = []
    monkeypatch.setattr(publish.app, "send_task", lambda name, args, **options: sent.append((args, options)))
    with django_capture_on_commit_callbacks(execute=True):
        runs = runs_dispatch_many([(schedule, tick(5)), (schedule, tick(10))], now=NOW)
    assert sent == [([run.pk], {"soft_time_limit": 42, "time_limit": 52, "producer": options["producer"]})
                    for run, (_, options) in zip(runs, sent)]
    assert Run.objects.filter(schedule=schedule, published_at__isnull=False).count() == 2


def test_a_batch_larger_than_one_statement_is_split(schedule, monkeypatch):
    from runs.services import dispatch

    monkeypatch.setattr(dispatch, "INSERT_CHUNK", 2)
    runs = runs_dispatch_many([(schedule, tick(m)) for m in range(0, 25, 5)], now=NOW, publish=False)
    assert all(runs) and len({run.pk for run in runs}) == 5
    assert [run.run_number for run in runs] == [1, 2, 3, 4, 5]

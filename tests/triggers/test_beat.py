"""The beat scheduler in process: one statement per idle loop, quiet start-ups, live pulse edits."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from runs.pulses import ensure_pulses
from scheduler_project.celery import app
from schedules.models import Agent, Schedule
from schedules.services import schedule_save
from triggers.beat import BACKEND_CLEANUP, TickwiseScheduler

# The beat runs in autocommit, as a real beat process does.
pytestmark = pytest.mark.django_db(transaction=True)

WRITES = ("INSERT", "UPDATE", "DELETE")


@pytest.fixture
def pulses():
    ensure_pulses(IntervalSchedule, PeriodicTask)
    # Nothing due during the test: no pulse message is sent.
    PeriodicTask.objects.update(last_run_at=timezone.now())


def writes(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if q["sql"].startswith(WRITES)]


def test_a_start_creates_the_result_cleanup_entry_once_and_then_writes_nothing(pulses):
    PeriodicTask.objects.filter(name=BACKEND_CLEANUP).delete()
    TickwiseScheduler(app=app).loop()
    assert PeriodicTask.objects.filter(name=BACKEND_CLEANUP).count() == 1
    stamp = PeriodicTasks.last_change()
    with CaptureQueriesContext(connection) as captured:
        TickwiseScheduler(app=app).loop()
    assert writes(captured) == []
    assert PeriodicTasks.last_change() == stamp  # other beats have nothing to reload


def test_an_edited_cleanup_entry_is_left_as_edited(pulses):
    TickwiseScheduler(app=app)
    PeriodicTask.objects.filter(name=BACKEND_CLEANUP).update(enabled=False)
    TickwiseScheduler(app=app).loop()
    assert PeriodicTask.objects.get(name=BACKEND_CLEANUP).enabled is False


def test_an_idle_loop_is_one_statement_without_a_connection_health_check(pulses, monkeypatch):
    agent = Agent.objects.create(name="reporter")
    schedule = schedule_save(Schedule(agent=agent, name="hourly", cron="0 * * * *"), now=timezone.now())
    scheduler = TickwiseScheduler(app=app)
    scheduler.loop()
    checks = []
    wrapper = connections["default"]
    original = wrapper.is_usable
    monkeypatch.setattr(wrapper, "is_usable", lambda: checks.append(1) or original())
    with CaptureQueriesContext(connection) as captured:
        loop = scheduler.loop(now=schedule.next_fire_at - timedelta(seconds=1))
    assert (len(captured.captured_queries), checks, loop.runs) == (1, [], 0)


def test_a_pulse_edit_applies_on_the_next_loop(pulses):
    scheduler = TickwiseScheduler(app=app)
    scheduler.loop()
    sweeper = PeriodicTask.objects.get(task="runs.sweep_outbox")
    sweeper.interval, _ = IntervalSchedule.objects.get_or_create(every=7, period="seconds")
    sweeper.save()  # django-celery-beat's signal bumps the change stamp
    scheduler.loop()
    assert scheduler.schedule[sweeper.name].schedule.run_every == timedelta(seconds=7)


def test_a_due_tick_is_fired_by_the_loop_with_the_clock_passed_in(pulses):
    agent = Agent.objects.create(name="reporter")
    schedule = schedule_save(Schedule(agent=agent, name="hourly", cron="0 * * * *"), now=timezone.now())
    scheduler = TickwiseScheduler(app=app)
    assert scheduler.loop(now=schedule.next_fire_at + timedelta(seconds=1)).runs == 1
    schedule.refresh_from_db()
    assert schedule.run_count == 1 and schedule.next_fire_at > timezone.now()


def test_a_loop_on_a_broken_connection_waits_and_the_next_one_reconnects(pulses):
    scheduler = TickwiseScheduler(app=app)
    scheduler.loop()
    connection.connection.close()  # the server went away between two loops
    assert scheduler.loop().sleep == 1.0
    assert scheduler.loop().runs == 0 and connection.is_usable()


def test_a_sent_pulse_records_its_run_in_one_update_without_touching_the_change_stamp(pulses):
    sweeper = PeriodicTask.objects.get(task="runs.sweep_outbox")
    long_ago = timezone.now() - timedelta(minutes=10)
    PeriodicTask.objects.filter(pk=sweeper.pk).update(last_run_at=long_ago)
    scheduler = TickwiseScheduler(app=app)
    stamp = PeriodicTasks.last_change()
    with CaptureQueriesContext(connection) as captured:
        scheduler.loop()  # sends the overdue sweeper; the first send is synced at once
    sweeper_after = PeriodicTask.objects.get(pk=sweeper.pk)
    assert sweeper_after.last_run_at > long_ago
    assert sweeper_after.total_run_count == sweeper.total_run_count + 1
    assert len(writes(captured)) == 1 and PeriodicTasks.last_change() == stamp

"""Real beat processes against one database: every tick once, nothing lost, changes picked up live."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from core import timing
from runs.models import Run, RunState, Trigger
from runs.pulses import ensure_pulses
from schedules.models import Agent, Schedule
from schedules.services import schedule_save
from triggers.firing import schedules_fire_due

pytestmark = pytest.mark.django_db(transaction=True)


def make_schedules(count: int, **fields) -> list[Schedule]:
    agent = Agent.objects.create(name="fleet", config={})
    now = timezone.now()
    return [schedule_save(Schedule(agent=agent, name=f"s{i}", **fields), now=now) for i in range(count)]


def test_three_beats_record_every_tick_exactly_once(stack):
    schedules = make_schedules(200, kind="interval", interval_seconds=2)
    beats = [stack.beat(name=f"beat{i}") for i in range(3)]
    time.sleep(20)
    for beat in beats:
        stack.kill(beat)
    stopped = timezone.now()

    for schedule in schedules:
        ticks = list(Run.objects.filter(schedule=schedule).order_by("tick_at").values_list("tick_at", flat=True))
        expected = [t.at for t in timing.ticks_between(schedule.plan(), after=ticks[0] - timedelta(microseconds=1),
                                                        until=ticks[-1])]
        assert ticks == expected, f"{schedule}: ledger differs from the timeline"
        assert stopped - ticks[-1] < timedelta(seconds=6), f"{schedule}: beats fell behind"
    assert not Run.objects.exclude(trigger=Trigger.SCHEDULE, state=RunState.PENDING).exists()
    # All three beats did work: SKIP LOCKED shares the due rows instead of serialising on them.
    fired_by = [beat.log.read_text().count("beat fired") for beat in beats]
    assert all(count > 0 for count in fired_by), fired_by


def test_beat_killed_between_commit_and_publish_loses_nothing(stack, waiter):
    ensure_pulses(IntervalSchedule, PeriodicTask)  # the test database is flushed between tests
    agent = Agent.objects.create(name="outbox")
    schedule = schedule_save(Schedule(agent=agent, name="once", kind="once",
                                      run_at=timezone.now() + timedelta(seconds=2)), now=timezone.now())
    doomed = stack.beat(name="doomed", extra_env={"TICKWISE_FAULTS": "publish.before_send"})
    waiter(lambda: doomed.poll() is not None, timeout=30, what="the beat to die after its commit")
    run = Run.objects.get(schedule=schedule)
    assert run.state == RunState.PENDING and run.published_at is None

    stack.worker()
    stack.beat(name="healthy")  # serves the outbox sweeper pulse
    waiter(lambda: Run.objects.filter(pk=run.pk, state=RunState.SUCCEEDED).exists(), timeout=60,
           what="the sweeper to publish the committed run")
    run.refresh_from_db()
    assert run.attempt == 1 and Run.objects.filter(schedule=schedule).count() == 1


def test_an_edit_is_picked_up_without_a_beat_restart(stack, waiter):
    agent = Agent.objects.create(name="editor")
    schedule = schedule_save(Schedule(agent=agent, name="yearly", cron="0 0 1 1 *"), now=timezone.now())
    stack.beat(extra_env={"TICKWISE_BEAT_MAX_SLEEP": "60"})
    time.sleep(2)  # the beat is asleep, its next wake-up a minute away

    schedule.kind, schedule.cron, schedule.run_at = "once", "", timezone.now() + timedelta(seconds=1)
    schedule_save(schedule, now=timezone.now())
    started = time.monotonic()
    waiter(lambda: Run.objects.filter(schedule=schedule).exists(), timeout=30, what="the edited schedule to fire")
    assert time.monotonic() - started < 20, "the beat waited for its max sleep instead of the change notice"
    assert Run.objects.get(schedule=schedule).schedule_version == 2


def test_edit_during_a_tick_neither_duplicates_nor_loses_it():
    agent = Agent.objects.create(name="race")
    t0 = timezone.now().replace(microsecond=0)
    schedule = schedule_save(Schedule(agent=agent, name="five", cron="*/5 * * * *"), now=t0)
    due = schedule.next_tick_at
    in_tick, edit_done = threading.Event(), threading.Event()

    def beat_tick():
        with transaction.atomic():
            list(Schedule.objects.select_for_update().filter(pk=schedule.pk))
            in_tick.set()
            time.sleep(1.0)  # the edit must wait for this tick's commit
            from triggers.firing import schedule_fire
            schedule_fire(Schedule.objects.select_related("agent").get(pk=schedule.pk), now=due)
        connection.close()

    def edit():
        in_tick.wait()
        stale = Schedule.objects.get(pk=schedule.pk)
        stale.input_template = "edited {{date}}"
        schedule_save(stale, now=due)
        edit_done.set()
        connection.close()

    threads = [threading.Thread(target=beat_tick), threading.Thread(target=edit)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert edit_done.is_set()
    schedule.refresh_from_db()
    assert schedule.version == 2 and schedule.run_count == 1  # the edit kept the beat's advance
    assert schedule.next_tick_at == due + timedelta(minutes=5)
    schedules_fire_due(now=due + timedelta(minutes=5), batch=10)
    assert list(Run.objects.filter(schedule=schedule).order_by("tick_at")
                .values_list("tick_at", "schedule_version")) == [(due, 1), (due + timedelta(minutes=5), 2)]

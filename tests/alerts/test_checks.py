"""The checks that raise alerts by themselves: the dead-letter queue's depth, and the beat's housekeeping watchdog."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_results.models import TaskResult

from alerts.models import Alert, AlertKind
from runs.models import Run, RunState, Trigger
from runs.pulses import ensure_pulses
from runs.services.dispatch import DispatchRequest, run_dispatch
from runs.services.housekeeping import runs_check_dead_letters
from schedules.models import Agent, Schedule
from triggers.watchdog import WATCHED, pulses_check_stalled


@pytest.fixture
def dead_runs(db):
    schedule = Schedule.objects.create(agent=Agent.objects.create(name="a"), name="s", cron="0 3 * * *")
    start = timezone.now()

    def make(count: int) -> list[Run]:
        made = []
        for _ in range(count):
            tick = start - timedelta(minutes=Run.objects.count() + 1)
            run = run_dispatch(schedule, DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=tick), now=start,
                               publish=False)
            Run.objects.filter(id=run.id).update(state=RunState.DEAD, finished_at=start)
            made.append(run)
        return made
    return make


def test_the_dead_letter_queue_crossing_its_threshold_opens_one_episode_until_it_falls_back(settings, dead_runs):
    settings.TICKWISE = {**settings.TICKWISE, "ALERT_DLQ_THRESHOLD": 2}
    now = timezone.now()
    dead_runs(1)
    assert runs_check_dead_letters(now=now) == 1
    assert not Alert.objects.exists()
    dead_runs(2)
    assert runs_check_dead_letters(now=now) == 3
    assert runs_check_dead_letters(now=now + timedelta(seconds=15)) == 3
    first = Alert.objects.get()
    assert (first.kind, first.key, first.raised_count, first.notifications) == (AlertKind.DLQ_GROWTH, "dlq", 2, 1)
    assert first.title == "3 runs in the dead-letter queue"

    Run.objects.filter(state=RunState.DEAD).order_by("id")[:1].get().delete()
    Run.objects.filter(id=Run.objects.filter(state=RunState.DEAD).first().id).delete()
    runs_check_dead_letters(now=now + timedelta(seconds=30))
    first.refresh_from_db()
    assert first.resolved_at is not None, "below the threshold again: the episode closed by itself"
    dead_runs(1)
    runs_check_dead_letters(now=now + timedelta(seconds=45))
    assert Alert.objects.filter(resolved_at__isnull=True).exclude(id=first.id).count() == 1, "a new crossing"


def test_the_watchdog_alerts_a_pulse_that_stopped_succeeding_and_closes_it_when_it_runs_again(settings, db):
    settings.TICKWISE = {**settings.TICKWISE, "HOUSEKEEPING_STALL_FACTOR": 4}
    ensure_pulses(IntervalSchedule, PeriodicTask)
    now = timezone.now()
    for task in WATCHED:
        TaskResult.objects.create(task_id=f"{task}-1", task_name=task, status="SUCCESS")
    TaskResult.objects.update(date_done=now - timedelta(seconds=40))  # date_done is auto_now on create
    since = now - timedelta(hours=1)
    # The sweeper (every 5 s) is 40 s silent: past 4 x 5 s. The reaper (15 s) is not past 60 s yet.
    stalled = pulses_check_stalled(now=now, watching_since=since)
    assert "runs.sweep_outbox" in stalled and "runs.reap_leases" not in stalled
    alert = Alert.objects.get(key="pulse:runs.sweep_outbox")
    assert alert.kind == AlertKind.HOUSEKEEPING_STALLED
    assert not Alert.objects.filter(key="pulse:runs.reap_leases").exists()
    TaskResult.objects.create(task_id="sweep-2", task_name="runs.sweep_outbox", status="SUCCESS")
    assert "runs.sweep_outbox" not in pulses_check_stalled(now=now + timedelta(seconds=1), watching_since=since)
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_a_pulse_that_never_ran_counts_from_when_the_watch_began(settings, db):
    settings.TICKWISE = {**settings.TICKWISE, "HOUSEKEEPING_STALL_FACTOR": 4}
    ensure_pulses(IntervalSchedule, PeriodicTask)
    now = timezone.now()
    assert "runs.reap_leases" not in pulses_check_stalled(now=now, watching_since=now - timedelta(seconds=59))
    PeriodicTask.objects.filter(task="runs.reap_leases").update(enabled=False)
    assert "runs.reap_leases" in pulses_check_stalled(now=now, watching_since=now - timedelta(seconds=61))
    assert "disabled" in Alert.objects.get(key="pulse:runs.reap_leases").detail


def test_the_beat_raises_housekeeping_stalled_when_no_worker_runs_the_pulses(stack, waiter):
    """A real beat and no worker: the sweeper's pulse is sent and never succeeds; a worker closes the episode."""
    ensure_pulses(IntervalSchedule, PeriodicTask)
    env = {"TICKWISE_WATCHDOG_EVERY": "1", "TICKWISE_HOUSEKEEPING_STALL_FACTOR": "2"}
    stack.beat(extra_env=env)
    episode = waiter(lambda: Alert.objects.filter(kind=AlertKind.HOUSEKEEPING_STALLED,
                                                  key="pulse:runs.sweep_outbox").first(),
                     timeout=60, what="the watchdog to notice the silent sweeper")
    assert episode.resolved_at is None
    stack.worker(extra_env=env)
    waiter(lambda: Alert.objects.get(id=episode.id).resolved_at is not None, timeout=60,
           what="the episode to close once the sweeper succeeds")

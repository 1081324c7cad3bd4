"""A busy beat stops on SIGTERM, wherever the signal lands: in a query, a publish or its sleep.

Celery's own handler syncs the schedule inside the signal handler, which
waits forever when the signal interrupts a query on the same connection
(scheduler_project/celery.py). Here the housekeeping pulses leave it a sync
to do and the beat fires 300 interval schedules every second, so most
signals land mid-loop; each stop must end the process.
"""
from __future__ import annotations

import random
import signal
import subprocess
import time

from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from runs.pulses import ensure_pulses
from schedules.models import Agent, Schedule


def test_a_busy_beat_exits_on_sigterm_every_time(stack, waiter):
    ensure_pulses(IntervalSchedule, PeriodicTask)  # pulses sent and not yet synced: the stop has a sync to do
    agent = Agent.objects.create(name="busy")
    start = timezone.now()
    Schedule.objects.bulk_create(
        Schedule(agent=agent, name=f"tick-{i}", kind="interval", cron="", interval_seconds=1, start_at=start,
                 next_fire_at=start, next_tick_at=start) for i in range(300))
    chance = random.Random(7)
    for attempt in range(6):
        beat = stack.beat(name=f"beat{attempt}")
        time.sleep(chance.uniform(2.5, 4.5))  # after the first pulses are sent
        beat.send_signal(signal.SIGTERM)
        try:
            code = beat.wait(timeout=20)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"beat {attempt} still running 20 s after SIGTERM ({beat.log})") from None
        assert code == 0, beat.log.read_text()[-2000:]

"""The Tickwise beat: a Celery beat scheduler whose clock is the schedule table.

Agent schedules are never beat entries. Each ``tick()`` fires what is due in
PostgreSQL (see ``firing``) and sleeps until the earliest ``next_fire_at``,
capped by ``TICKWISE["BEAT_MAX_SLEEP"]``. Housekeeping pulses (outbox sweeper,
reaper, retention) are django-celery-beat ``PeriodicTask`` rows served by the
parent class in the same process. Any number of beats may run: they share due
schedules through ``SKIP LOCKED`` and the ledger's unique constraint.
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler

from .firing import next_due_at, schedules_fire_due
from .notify import WakeListener

log = logging.getLogger("tickwise.beat")

MIN_SLEEP = 0.05


class TickwiseScheduler(DatabaseScheduler):
    def __init__(self, *args, **kwargs) -> None:
        self.wake = WakeListener()
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs) -> float:
        housekeeping = super().tick(*args, **kwargs)
        wait = min(housekeeping, self.fire_agent_schedules())
        # Sleep here rather than in celery's service loop, so a change notice
        # (a schedule created, edited or resumed) ends the sleep at once.
        if wait > MIN_SLEEP:
            self.wake.wait(wait)
        return 0.0

    def fire_agent_schedules(self) -> float:
        """Fire every due tick; return seconds until the next one is due."""
        close_old_connections()
        max_sleep = float(settings.TICKWISE["BEAT_MAX_SLEEP"])
        batch = settings.TICKWISE["BEAT_BATCH"]
        try:
            next_due = next_due_at()
            if next_due is not None and next_due > timezone.now():
                # Nothing due: one index-only read, no locking transaction.
                return self._sleep_until(next_due, max_sleep)
            while True:
                now = timezone.now()
                report = schedules_fire_due(now=now, batch=batch)
                if report.runs:
                    log.info("beat fired %s run(s) for %s schedule(s)", report.runs, report.schedules)
                if report.schedules < batch:
                    break
        except DatabaseError:
            log.exception("beat loop failed; retrying shortly")
            return 1.0
        return self._sleep_until(report.next_due, max_sleep)

    @staticmethod
    def _sleep_until(next_due, max_sleep: float) -> float:
        if next_due is None:
            return max_sleep
        wait = (next_due - timezone.now()).total_seconds()
        return max(MIN_SLEEP, min(max_sleep, wait))

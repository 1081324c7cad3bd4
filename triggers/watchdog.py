"""The beat's watchdog over the housekeeping pulses.

The pulses (outbox sweeper, lease reaper, retention) run on the workers; when
every worker is gone, or the pulses were disabled by mistake, nothing else
notices. The beat stays up when workers die, so it checks every
``WATCHDOG_EVERY`` loops: a pulse whose last success (its stored Celery
result) is older than ``HOUSEKEEPING_STALL_FACTOR`` times its interval raises
``housekeeping_stalled``, one episode per pulse; a pulse that succeeds again
closes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from alerts.models import AlertKind
from alerts.services import alert_raise, alert_resolve_key
from runs.pulses import PULSES

WATCHED = sorted({task for _, task, _, _ in PULSES})


def pulses_check_stalled(*, now: datetime, watching_since: datetime) -> list[str]:
    """Raise or close each watched pulse's episode; returns the stalled pulses' task names.

    A pulse that never succeeded counts from ``watching_since`` (the beat's
    start): a fresh install is not alerted before its pulses had a chance.
    """
    factor = settings.TICKWISE["HOUSEKEEPING_STALL_FACTOR"]
    pulses = PeriodicTask.objects.filter(task__in=WATCHED, interval__isnull=False).select_related("interval")
    stalled = []
    for pulse in pulses:
        every = timedelta(**{pulse.interval.period: pulse.interval.every})
        key = f"pulse:{pulse.task}"
        silent = now - max(_last_success(pulse.task) or watching_since, watching_since)
        if silent <= every * factor:
            alert_resolve_key(AlertKind.HOUSEKEEPING_STALLED, key, by="tickwise: the pulse succeeded", now=now)
            continue
        stalled.append(pulse.task)
        alert_raise(AlertKind.HOUSEKEEPING_STALLED, key=key, now=now,
                    title=f"housekeeping pulse {pulse.name!r} has not succeeded for {int(silent.total_seconds())}s",
                    detail=_why(pulse, every))
    return stalled


def _last_success(task: str) -> datetime | None:
    return TaskResult.objects.filter(task_name=task, status="SUCCESS").aggregate(last=Max("date_done"))["last"]


def _why(pulse: PeriodicTask, every: timedelta) -> str:
    if not pulse.enabled:
        return f"{pulse.task} is disabled in the admin (Periodic tasks); it should run every {every}."
    return (f"{pulse.task} should run every {every}: are any workers consuming the queue, and do they "
            "succeed? (Celery results in the admin, the workers' logs.)")


@dataclass
class Watchdog:
    """Counts beat loops; every ``every`` loops, checks the pulses."""

    every: int
    started_at: datetime
    loops: int = field(default=0)

    def loop(self, *, now: datetime) -> list[str] | None:
        self.loops += 1
        if self.loops % self.every:
            return None
        return pulses_check_stalled(now=now, watching_since=self.started_at)

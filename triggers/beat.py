"""The Tickwise beat: a Celery beat scheduler whose clock is the schedule table.

Agent schedules are never beat entries. Each ``tick()`` fires what is due in
PostgreSQL (see ``firing``) and sleeps until the earliest ``next_fire_at``,
capped by ``TICKWISE["BEAT_MAX_SLEEP"]``. Housekeeping pulses (outbox sweeper,
reaper, retention) are django-celery-beat ``PeriodicTask`` rows served by the
parent class in the same process. Any number of beats may run: they share due
schedules through ``SKIP LOCKED`` and the ledger's unique constraint.

A loop with nothing due is one statement (``BEAT_PROBE_SQL``): the earliest
``next_fire_at`` through the due index, and django-celery-beat's change stamp
for the pulses, which its scheduler would otherwise read (and commit) on its own.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, InterfaceError, close_old_connections, connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from core import internals
from schedules import sql
from schedules.notify import WakeListener

from .firing import schedules_fire_due
from .watchdog import Watchdog

log = logging.getLogger("tickwise.beat")

MIN_SLEEP = 0.05
BACKEND_CLEANUP = "celery.backend_cleanup"

# ``PeriodicTasks`` holds one row (ident 1), touched on every pulse change.
BEAT_PROBE_SQL = (f"SELECT ({sql.NEXT_DUE}), "
                  f"(SELECT last_update FROM {PeriodicTasks._meta.db_table} WHERE ident = 1)")


def _close_if_broken_or_old() -> None:
    """``close_old_connections()`` when there is something to close.

    Called unconditionally it re-arms Django's connection health check, a
    ``SELECT 1`` round trip before every loop's probe; the probe is check
    enough: when it fails, ``errors_occurred`` is set and the next loop closes
    (and reopens) the connection.
    """
    if connection.connection is None:
        return
    if internals.connection_expired(connection, monotonic_now=time.monotonic()) or not connection.get_autocommit():
        close_old_connections()


@dataclass(frozen=True)
class Loop:
    sleep: float  # seconds until something is due (pulse or agent tick), capped
    runs: int  # ledger rows this loop inserted


class PulseEntry(ModelEntry):
    """django-celery-beat's entry, saved with one UPDATE of the columns the beat owns.

    Its own ``save()`` reads the row and writes every column back through
    ``PeriodicTask.save()`` (a uniqueness check and a schedule read with it).
    """

    # ``save_fields`` less ``no_changes``, a flag for the change signal, not a column.
    saved_columns = ("last_run_at", "total_run_count")

    def save(self) -> None:
        PeriodicTask.objects.filter(pk=self.model.pk).update(
            **{name: getattr(self.model, name) for name in self.saved_columns})


class TickwiseScheduler(DatabaseScheduler):
    Entry = PulseEntry
    _last_timestamp: datetime | None  # the parent's (core.internals.BEAT_SCHEDULER_STATE)

    def __init__(self, *args, **kwargs) -> None:
        self.wake = WakeListener()
        self._pulses_changed_at: datetime | None = None
        self.watchdog = Watchdog(settings.TICKWISE["WATCHDOG_EVERY"], started_at=timezone.now())
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs) -> float:
        wait = self.loop().sleep
        # Sleep here rather than in celery's service loop, so a change notice
        # (a schedule created, edited or resumed) ends the sleep at once.
        if wait > MIN_SLEEP:
            self.wake.wait(wait)
        return 0.0

    def loop(self, *, now: datetime | None = None) -> Loop:
        """One beat loop without its sleep: the pulses, then every due agent tick.

        ``now`` fixes the agent schedules' clock (tests and the benchmark);
        by default each batch reads the clock as it starts. The pulses always
        run on celery beat's own clock.
        """
        _close_if_broken_or_old()
        try:
            with connection.cursor() as cursor:
                cursor.execute(BEAT_PROBE_SQL)
                next_due, self._pulses_changed_at = cursor.fetchone()
        except DatabaseError:
            # The pulses need the database as much as the agent schedules do.
            log.exception("beat probe failed; retrying shortly")
            return Loop(1.0, 0)
        housekeeping = DatabaseScheduler.tick(self)
        self._watch(now or timezone.now())
        sleep, runs = self.fire_agent_schedules(next_due, clock=(lambda: now) if now else timezone.now)
        return Loop(min(housekeeping, sleep), runs)

    def _watch(self, now: datetime) -> None:
        try:
            self.watchdog.loop(now=now)
        except DatabaseError:
            log.exception("the housekeeping watchdog could not check the pulses; it tries again later")

    def fire_agent_schedules(self, next_due: datetime | None, *,
                             clock: Callable[[], datetime] = timezone.now) -> tuple[float, int]:
        """Fire every due tick; return (seconds until the next one is due, rows inserted)."""
        max_sleep = float(settings.TICKWISE["BEAT_MAX_SLEEP"])
        batch, runs = settings.TICKWISE["BEAT_BATCH"], 0
        if next_due is None or next_due > clock():
            return self._sleep_until(next_due, max_sleep, clock()), 0  # nothing due: no locking transaction
        try:
            while True:
                report = schedules_fire_due(now=clock(), batch=batch)
                runs += report.runs
                if report.runs:
                    log.info("beat fired %s run(s) for %s schedule(s)", report.runs, report.schedules)
                if report.schedules < batch:
                    break
        except DatabaseError:
            log.exception("beat loop failed; retrying shortly")
            return 1.0, runs
        return self._sleep_until(report.next_due, max_sleep, clock()), runs

    @staticmethod
    def _sleep_until(next_due: datetime | None, max_sleep: float, now: datetime) -> float:
        if next_due is None:
            return max_sleep
        return max(MIN_SLEEP, min(max_sleep, (next_due - now).total_seconds()))

    # --- the housekeeping pulses (django-celery-beat's scheduler) --------------

    def schedule_changed(self) -> bool:
        """Whether a pulse changed since the last loop, from this loop's probe.

        django-celery-beat asks PostgreSQL on every access to ``schedule``
        (and commits first, for MySQL's repeatable read); the probe already
        read the stamp, so a pulse edit still applies on the next loop.
        """
        # ``_last_timestamp``, ``_dirty``, ``_schedule``: the parent's state (core.internals).
        last, stamp = self._last_timestamp, self._pulses_changed_at
        self._last_timestamp = stamp
        return bool(stamp and last and stamp > last)

    def sync(self) -> None:
        """Write the sent pulses' last run (every 3 minutes), as django-celery-beat's ``sync()``.

        Without its ``close_old_connections()``, which would arm a health
        check round trip (see ``_close_if_broken_or_old``).
        """
        _close_if_broken_or_old()
        failed: set[str] = set()
        try:
            while self._dirty:
                name = self._dirty.pop()
                try:
                    self._schedule[name].save()
                except (KeyError, TypeError):
                    failed.add(name)  # reloaded away meanwhile: tried again next sync
        except (DatabaseError, InterfaceError):
            log.exception("beat could not record the pulses' last run; the next sync tries again")
        finally:
            self._dirty |= failed

    def enabled_models_qs(self):
        # The few pulse rows, with their schedules, in one query: no N+1 loads,
        # and no hour-window filter (built for tables of thousands of crontabs,
        # at the cost of a timezone query and a CASE per crontab row).
        return self.Model.objects.enabled().select_related("interval", "crontab", "solar", "clocked")

    def install_default_entries(self, data) -> None:
        """Create Celery's result cleanup entry once; afterwards it is an admin-editable row.

        django-celery-beat rewrites it on every start, which also bumps the
        change stamp every other beat watches and reloads on.
        """
        if BACKEND_CLEANUP in data or not self.app.conf.result_expires:
            return
        if not PeriodicTask.objects.filter(name=BACKEND_CLEANUP).exists():
            super().install_default_entries(data)

"""Writes to the registry. Admin actions, commands and the API call these."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import transaction

from core import timing

from .models import AWAITS_COMPLETION, DEFINITION_FIELDS, Schedule
from .notify import beat_wake_on_commit


def schedule_plan_from(schedule: Schedule, *, now: datetime) -> None:
    """Point ``next_tick_at``/``next_fire_at`` at the first tick at or after ``now``."""
    schedule.aim_at(timing.next_tick(schedule.plan(), after=now - timedelta(microseconds=1),
                                     runs_so_far=schedule.run_count))


# Columns the beat and the workers own; an edit never writes them back from a
# stale form, it takes them from the locked row.
RUNTIME_FIELDS = ("next_tick_at", "next_fire_at", "last_tick_at", "run_count", "consecutive_failures",
                  "paused", "paused_reason", "deleted_at", "version")


class StaleVersion(ValueError):
    pass


def schedule_save(schedule: Schedule, *, now: datetime, expected_version: int | None = None) -> Schedule:
    """Create or update a validated schedule; a definition change bumps ``version``.

    The row is locked for the edit, so a beat firing it meanwhile either
    finishes first (the edit then sees its advance) or waits. An edit applies
    from the next tick that has not fired yet, which may be due already.
    """
    schedule.full_clean()
    if schedule.session_mode == "persistent" and not schedule.session_id:
        schedule.session_id = uuid.uuid4().hex
    with transaction.atomic():
        if schedule.pk is None:
            schedule.save()  # the jitter seed is the primary key: plan after the insert
            schedule_plan_from(schedule, now=now)
        else:
            _merge_locked(schedule, now=now, expected_version=expected_version)
        schedule.save()
        beat_wake_on_commit()
    return schedule


def _merge_locked(schedule: Schedule, *, now: datetime, expected_version: int | None) -> None:
    current = Schedule.objects.select_for_update().get(pk=schedule.pk)
    if expected_version is not None and expected_version != current.version:
        raise StaleVersion(f"schedule {schedule.pk} is at version {current.version}, "
                           f"the edit was made on version {expected_version}")
    for name in RUNTIME_FIELDS:
        setattr(schedule, name, getattr(current, name))
    if _definition_changed(current, schedule):
        schedule.version = current.version + 1
        schedule_plan_from(schedule, now=_replan_start(current, now=now))


def _replan_start(current: Schedule, *, now: datetime) -> datetime:
    """A due tick not fired yet stays due; a tick already fired never comes back."""
    start = min(now, current.next_tick_at) if current.next_tick_at else now
    if current.last_tick_at and start <= current.last_tick_at:
        start = current.last_tick_at + timedelta(microseconds=1)
    return start


def _definition_changed(previous: Schedule, current: Schedule) -> bool:
    return any(previous.serializable_value(name) != current.serializable_value(name)
               for name in DEFINITION_FIELDS)


def schedule_pause(schedule: Schedule, *, reason: str = "", now: datetime) -> None:
    # Ticks are not generated while paused (the due index excludes paused rows):
    # pausing is an explicit act, shown in the admin, and resuming plans from now.
    Schedule.objects.filter(id=schedule.id).update(paused=True, paused_reason=reason[:200])
    schedule.paused, schedule.paused_reason = True, reason[:200]


def schedule_resume(schedule: Schedule, *, now: datetime) -> None:
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().get(id=schedule.id)
        locked.paused, locked.paused_reason, locked.consecutive_failures = False, "", 0
        schedule_plan_from(locked, now=now)
        locked.save(update_fields=["paused", "paused_reason", "consecutive_failures",
                                   "next_tick_at", "next_fire_at"])
        beat_wake_on_commit()
    schedule.refresh_from_db()


def schedule_delete(schedule: Schedule, *, now: datetime) -> None:
    """Soft delete: the ledger keeps pointing at the schedule."""
    Schedule.objects.filter(id=schedule.id).update(deleted_at=now, next_fire_at=None, next_tick_at=None)


def schedule_after_run(schedule_id: int, *, finished_at: datetime) -> None:
    """An after-completion interval plans its next tick once a run has finished.

    The beat leaves such a schedule with no ``next_fire_at`` while its run is
    in flight; the run's terminal outcome calls this with when it finished.
    """
    with transaction.atomic():
        waiting = (Schedule.objects.select_for_update()
                   .filter(AWAITS_COMPLETION, id=schedule_id, next_fire_at__isnull=True,
                           deleted_at__isnull=True).first())
        if waiting is None:
            return
        tick = timing.next_tick(waiting.plan(), after=finished_at, runs_so_far=waiting.run_count,
                                last_finished_at=finished_at)
        waiting.aim_at(tick)
        waiting.save(update_fields=["next_tick_at", "next_fire_at"])
        beat_wake_on_commit()

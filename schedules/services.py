"""Writes to the registry. Admin actions, commands and the API call these."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import transaction

from . import timing
from .models import DEFINITION_FIELDS, Schedule


def schedule_next_tick(schedule: Schedule, *, after: datetime) -> timing.Tick | None:
    return timing.next_tick(schedule.plan(), after=after, runs_so_far=schedule.run_count)


def schedule_plan_from(schedule: Schedule, *, now: datetime) -> None:
    """Point ``next_tick_at``/``next_fire_at`` at the first tick after ``now``."""
    tick = schedule_next_tick(schedule, after=now - timedelta(microseconds=1))
    schedule.next_tick_at = tick.at if tick else None
    schedule.next_fire_at = tick.fire_at if tick else None


def schedule_save(schedule: Schedule, *, now: datetime, previous: Schedule | None = None) -> Schedule:
    """Create or update a validated schedule; a definition change bumps ``version``.

    Ticks are planned from ``now``: an edit applies from the next tick on.
    """
    schedule.full_clean()
    if schedule.session_mode == "persistent" and not schedule.session_id:
        schedule.session_id = uuid.uuid4().hex
    with transaction.atomic():
        if previous is not None and _definition_changed(previous, schedule):
            schedule.version = previous.version + 1
        if schedule.pk is None:
            schedule.save()  # the jitter seed is the primary key: plan after the insert
        if previous is None or _definition_changed(previous, schedule) or schedule.next_fire_at is None:
            schedule_plan_from(schedule, now=now)
        schedule.save()
    return schedule


def _definition_changed(previous: Schedule, current: Schedule) -> bool:
    return any(getattr(previous, f"{name}_id", getattr(previous, name, None))
               != getattr(current, f"{name}_id", getattr(current, name, None))
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
    schedule.refresh_from_db()


def schedule_run_now(schedule: Schedule, *, now: datetime):
    """Start a run immediately through the dispatch path (works while paused)."""
    from runs.models import Trigger
    from runs.services.dispatch import DispatchRequest, run_dispatch

    with transaction.atomic():
        return run_dispatch(schedule, DispatchRequest(trigger=Trigger.MANUAL, tick_at=now), now=now)


def schedule_delete(schedule: Schedule, *, now: datetime) -> None:
    """Soft delete: the ledger keeps pointing at the schedule."""
    Schedule.objects.filter(id=schedule.id).update(deleted_at=now, next_fire_at=None, next_tick_at=None)

"""Writes to the registry. Admin actions, commands and the API call these."""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import F

from alerts.models import AlertKind
from alerts.services import alert_resolve_key
from core import timing
from workspaces.audit import Actor, audit_record, field_changes

from .models import AWAITS_COMPLETION, DEFINITION_FIELDS, FIRE_FIELDS, Schedule, ScheduleKind
from .notify import beat_wake_on_commit
from .versioned import locked_at_version

_MICROSECOND = timedelta(microseconds=1)


def schedule_plan_from(schedule: Schedule, *, now: datetime) -> None:
    """Point ``next_tick_at``/``next_fire_at`` at the first tick at or after ``now``.

    No tick left: the schedule is finished, as of ``now``.
    """
    schedule.aim_at(timing.next_tick(schedule.plan(), after=now - _MICROSECOND, runs_so_far=schedule.run_count))
    _stamp_finished(schedule, at=now)


def _stamp_finished(schedule: Schedule, *, at: datetime) -> None:
    if schedule.finished_reason and schedule.finished_at is None:
        schedule.finished_at = at


def schedules_record_finished(schedules: Sequence[Schedule], *, now: datetime) -> None:
    """Save the finished state ``aim_at`` gave schedules the beat has just advanced.

    Each schedule finishes once, so this writes a row only for the rare one
    that just ran out of ticks. Call in the transaction that holds their locks.
    """
    for schedule in schedules:
        if schedule.finished_reason and schedule.finished_at is None:
            _stamp_finished(schedule, at=now)
            schedule.save(update_fields=["finished_at", "finished_reason"])


# Columns the beat and the workers own; an edit never writes them back from a
# stale form, it takes them from the locked row.
RUNTIME_FIELDS = ("next_tick_at", "next_fire_at", "last_tick_at", "run_count", "consecutive_failures",
                  "paused", "paused_reason", "deleted_at", "version", "finished_at", "finished_reason")


# What the audit trail compares on a save: the definition and the settings people edit.
AUDITED_FIELDS = ("name", *DEFINITION_FIELDS, "failure_limit")


def _audited(schedule: Schedule) -> dict[str, object]:
    return {name: schedule.serializable_value(name) for name in AUDITED_FIELDS}


def schedule_validate(schedule: Schedule, *, now: datetime, actor: Actor | None = None) -> None:
    """Everything ``schedule_save`` checks, for a form or an API to ask before saving.

    ``full_clean`` (every check that needs no clock), then: a save that would
    leave nothing to fire is refused, with why. Raises ``ValidationError``.
    """
    schedule.full_clean()
    previous = Schedule.objects.filter(pk=schedule.pk).first() if schedule.pk is not None else None
    _check_cadence(schedule, _audited(previous) if previous is not None else None, actor)
    _check_fires(schedule, previous, now=now)


def _check_fires(schedule: Schedule, previous: Schedule | None, *, now: datetime) -> None:
    """Refuse a definition with no tick left, as the save would plan it.

    Only a save that sets what decides firing is judged: a new schedule, or
    an edit of one of its ``FIRE_FIELDS``. Re-saving a one-shot that has
    fired, or a schedule whose window has ended, for an unrelated edit is not.
    """
    if previous is not None and not _fire_fields_changed(previous, schedule):
        return
    start = now if previous is None else _replan_start(previous, now=now)
    runs = 0 if previous is None else previous.run_count
    if timing.next_tick(schedule.plan(now=now), after=start - _MICROSECOND, runs_so_far=runs) is None:
        raise ValidationError(_never_fires(schedule, start=start, runs=runs))


def _fire_fields_changed(previous: Schedule, current: Schedule) -> bool:
    return any(previous.serializable_value(name) != current.serializable_value(name)
               for name in FIRE_FIELDS[current.kind])


def _never_fires(schedule: Schedule, *, start: datetime, runs: int) -> dict[str, str]:
    """Why a plan with no tick left has none, on the field to change."""
    never = "the schedule would never fire"
    if schedule.max_runs is not None and runs >= schedule.max_runs:
        return {"max_runs": f"max_runs {schedule.max_runs} is already reached ({runs} runs so far): {never} again."}
    window = f"the window from {_shown(schedule.start_at)} to {_shown(schedule.end_at)}"
    if schedule.kind == ScheduleKind.ONCE and schedule.run_at is not None:
        if schedule.run_at < start:
            return {"run_at": f"run_at {_shown(schedule.run_at)} is in the past (now {_shown(start)}): "
                              f"a one-shot in the past would never fire."}
        return {"run_at": f"run_at {_shown(schedule.run_at)} is outside {window}: {never}."}
    if schedule.end_at is not None:
        if schedule.end_at < start:
            return {"end_at": f"end_at {_shown(schedule.end_at)} has already passed (now {_shown(start)}): {never}."}
        return {"end_at": f"No tick falls in {window} after {_shown(start)}: {never}."}
    return {NON_FIELD_ERRORS: f"No tick falls after {_shown(start)}: {never}."}


def _shown(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_save(schedule: Schedule, *, now: datetime, expected_version: int | None = None,
                  actor: Actor | None = None, detail: str = "") -> Schedule:
    """Create or update a valid schedule (``schedule_validate``); a definition change bumps ``version``.

    The row is locked for the edit, so a beat firing it meanwhile either
    finishes first (the edit then sees its advance) or waits. An edit applies
    from the next tick that has not fired yet, which may be due already.
    """
    schedule.full_clean()
    if schedule.session_mode == "persistent" and not schedule.session_id:
        schedule.session_id = uuid.uuid4().hex
    with transaction.atomic():
        if schedule.pk is None:
            _check_cadence(schedule, None, actor)
            _check_fires(schedule, None, now=now)
            schedule.save()  # the jitter seed is the primary key: plan after the insert
            schedule_plan_from(schedule, now=now)
            _audit(actor, schedule, "create", now=now, before={}, version_before=None, detail=detail)
        else:
            before, version_before = _merge_locked(schedule, now=now, expected_version=expected_version)
            _check_cadence(schedule, before, actor)
            if field_changes(before, _audited(schedule)):
                _audit(actor, schedule, "update", now=now, before=before, version_before=version_before)
        schedule.save()
        beat_wake_on_commit()
    return schedule


# People and API keys; agents have their own guardrails (triggers.tools.guardrails), and the
# system and the commands are the operator's own hand.
CADENCE_CHECKED = ("admin", "api")
CADENCE_FIELDS = ("kind", "cron", "interval_seconds", "timezone")


def _check_cadence(schedule: Schedule, before: dict[str, object] | None, actor: Actor | None) -> None:
    """A new or re-timed recurring schedule fires no more often than its workspace allows."""
    if actor is None or actor.source not in CADENCE_CHECKED:
        return
    if before is not None and all(before.get(name) == getattr(schedule, name) for name in CADENCE_FIELDS):
        return  # an edit that leaves the cadence alone keeps what it had
    gap = schedule.shortest_gap()
    limit = schedule.agent.workspace.min_interval_seconds
    if gap is not None and gap.total_seconds() < limit:
        field = "interval_seconds" if schedule.kind == ScheduleKind.INTERVAL else "cron"
        raise ValidationError({field: f"Fires every {gap.total_seconds():.0f}s; this workspace allows a recurring "
                                      f"schedule every {limit}s at most (workspace setting min_interval_seconds)."})


def _audit(actor: Actor | None, schedule: Schedule, action: str, *, now: datetime, before: dict[str, object],
           version_before: int | None, detail: str = "") -> None:
    audit_record(actor, obj=schedule, action=action, now=now, workspace_id=schedule.agent.workspace_id,
                 version_before=version_before, version_after=schedule.version,
                 changes=field_changes(before, _audited(schedule)) if before or action == "create" else {},
                 detail=detail)


def _merge_locked(schedule: Schedule, *, now: datetime,
                  expected_version: int | None) -> tuple[dict[str, object], int]:
    """Take the runtime columns from the locked row; returns what the audit compares, and the old version."""
    current = _locked(schedule, expected_version)
    _check_fires(schedule, current, now=now)
    for name in RUNTIME_FIELDS:
        setattr(schedule, name, getattr(current, name))
    if _definition_changed(current, schedule):
        schedule.version = current.version + 1
        schedule_plan_from(schedule, now=_replan_start(current, now=now))
    elif _audited(current) != _audited(schedule):
        schedule.version = current.version + 1  # a rename or a new failure limit: a new representation
    return _audited(current), current.version


def _locked(schedule: Schedule, expected_version: int | None) -> Schedule:
    """The schedule's row, locked; StaleVersion when the caller's version is not its version."""
    return locked_at_version(schedule, expected_version)


def _replan_start(current: Schedule, *, now: datetime) -> datetime:
    """A due tick not fired yet stays due; a tick already fired never comes back."""
    start = min(now, current.next_tick_at) if current.next_tick_at else now
    if current.last_tick_at and start <= current.last_tick_at:
        start = current.last_tick_at + timedelta(microseconds=1)
    return start


def _definition_changed(previous: Schedule, current: Schedule) -> bool:
    return any(previous.serializable_value(name) != current.serializable_value(name)
               for name in DEFINITION_FIELDS)


def schedule_pause(schedule: Schedule, *, reason: str = "", now: datetime, actor: Actor | None = None,
                   expected_version: int | None = None) -> None:
    """Pause; the write is conditional on ``expected_version`` when one is given (StaleVersion otherwise).

    Ticks are not generated while paused (the due index excludes paused
    rows): pausing is an explicit act, shown in the admin, and resuming plans
    from now.
    """
    with transaction.atomic():
        current = _locked(schedule, expected_version)
        Schedule.objects.filter(id=schedule.id).update(paused=True, paused_reason=reason[:200],
                                                       version=F("version") + 1)
        schedule.paused, schedule.paused_reason, schedule.version = True, reason[:200], current.version + 1
        _audit(actor, schedule, "pause", now=now, before={}, version_before=current.version, detail=reason)


def schedule_resume(schedule: Schedule, *, now: datetime, actor: Actor | None = None,
                    expected_version: int | None = None) -> None:
    with transaction.atomic():
        locked = _locked(schedule, expected_version)
        locked.paused, locked.paused_reason, locked.consecutive_failures = False, "", 0
        locked.version += 1
        schedule_plan_from(locked, now=now)
        locked.save(update_fields=["paused", "paused_reason", "consecutive_failures", "version",
                                   "next_tick_at", "next_fire_at", "finished_at", "finished_reason"])
        _audit(actor, locked, "resume", now=now, before={}, version_before=locked.version - 1)
        # A resume ends the auto-pause episode: the next auto-pause is a new alert, sent even
        # inside the cool-down, not a count on the old one.
        alert_resolve_key(AlertKind.AUTO_PAUSE, f"schedule:{locked.id}", by="tickwise: resumed", now=now)
        beat_wake_on_commit()
    schedule.refresh_from_db()


def schedule_delete(schedule: Schedule, *, now: datetime, actor: Actor | None = None,
                    expected_version: int | None = None, reason: str = "") -> None:
    """Soft delete: the ledger keeps pointing at the schedule; its name is free for a new schedule.

    ``reason`` is kept in the audit entry (a watched process ended, the agent cancelled it).
    """
    with transaction.atomic():
        current = _locked(schedule, expected_version)
        Schedule.objects.filter(id=schedule.id).update(deleted_at=now, next_fire_at=None, next_tick_at=None,
                                                       version=F("version") + 1)
        schedule.deleted_at, schedule.version = now, current.version + 1
        _audit(actor, schedule, "delete", now=now, before={}, version_before=current.version, detail=reason)


def schedule_after_run(schedule_id: int, *, finished_at: datetime) -> None:
    """An after-completion interval plans its next tick once a run has finished.

    The beat leaves such a schedule with no ``next_fire_at`` while its run is
    in flight; the run's terminal outcome calls this with when it finished.
    No tick left (its window ended, or that was its last run): it is
    finished, as of that run's end.
    """
    with transaction.atomic():
        waiting = (Schedule.objects.select_for_update()
                   .filter(AWAITS_COMPLETION, id=schedule_id, next_fire_at__isnull=True,
                           deleted_at__isnull=True, finished_reason="").first())
        if waiting is None:
            return
        tick = timing.next_tick(waiting.plan(), after=finished_at, runs_so_far=waiting.run_count,
                                last_finished_at=finished_at)
        waiting.aim_at(tick)
        _stamp_finished(waiting, at=finished_at)
        waiting.save(update_fields=["next_tick_at", "next_fire_at", "finished_at", "finished_reason"])
        beat_wake_on_commit()

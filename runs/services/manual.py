"""Runs started by a person or a program: the admin's "Run now", ``manage.py run_now``."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from django.db import transaction

from schedules.authz import schedules_unauthorized, unauthorized_reason
from schedules.models import Schedule
from schedules.services import schedule_pause
from workspaces.audit import Actor, audit_record

from ..models import Run, RunState, SkipReason, Trigger
from .dispatch import DispatchRequest, run_dispatch


class RunRefused(ValueError):
    """A run that is not started; the message says why, for the person who asked."""


def run_now(schedule: Schedule, *, now: datetime, actor: Actor | None = None, input: str | None = None) -> Run:
    """Start a run immediately through the dispatch path (works while paused), audited.

    ``input`` replaces the rendered template for this run only. Refused
    (``RunRefused``) when the schedule's agent is inactive: its scheduled
    ticks are skipped, and a manual run would be skipped too. When the
    schedule's creator may no longer run it (``schedules.authz``), the
    request is recorded ``skipped: unauthorized`` and the schedule paused,
    as at a scheduled fire.
    """
    if not schedule.agent.is_active:
        raise RunRefused(f"agent {schedule.agent.name!r} is inactive: activate it to run {schedule}")
    request = DispatchRequest(trigger=Trigger.MANUAL, tick_at=now, input=input or "",
                              started_by_id=actor.user_id if actor else None)
    with transaction.atomic():
        if schedules_unauthorized([schedule]):
            request = replace(request, state=RunState.SKIPPED, skip_reason=SkipReason.UNAUTHORIZED)
            schedule_pause(schedule, reason=unauthorized_reason(schedule), now=now)
        run = run_dispatch(schedule, request, now=now)
        if run is None:  # its identity is the request's instant: only a second request in the same microsecond
            raise RunRefused(f"a run of {schedule} was started at {now.isoformat()} already")
        audit_record(actor, obj=schedule, action="run_now", now=now, workspace_id=schedule.agent.workspace_id,
                     version_before=schedule.version, version_after=schedule.version, detail=f"run {run.pk}")
    return run

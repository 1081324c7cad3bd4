"""Runs started by a person or a program: the admin's "Run now", ``manage.py run_now``."""
from __future__ import annotations

from datetime import datetime

from django.db import transaction

from schedules.models import Schedule

from ..models import Run, Trigger
from .dispatch import DispatchRequest, run_dispatch


class RunRefused(ValueError):
    """A run that is not started; the message says why, for the person who asked."""


def run_now(schedule: Schedule, *, now: datetime) -> Run | None:
    """Start a run immediately through the dispatch path (works while paused).

    Refused (``RunRefused``) when the schedule's agent is inactive: its
    scheduled ticks are skipped, and a manual run would be skipped too.
    """
    if not schedule.agent.is_active:
        raise RunRefused(f"agent {schedule.agent.name!r} is inactive: activate it to run {schedule}")
    with transaction.atomic():
        return run_dispatch(schedule, DispatchRequest(trigger=Trigger.MANUAL, tick_at=now), now=now)

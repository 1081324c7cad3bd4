"""Runs started by a person or a program: the admin's "Run now", ``manage.py run_now``."""
from __future__ import annotations

from datetime import datetime

from django.db import transaction

from schedules.models import Schedule

from ..models import Run, Trigger
from .dispatch import DispatchRequest, run_dispatch


def run_now(schedule: Schedule, *, now: datetime) -> Run | None:
    """Start a run immediately through the dispatch path (works while paused)."""
    with transaction.atomic():
        return run_dispatch(schedule, DispatchRequest(trigger=Trigger.MANUAL, tick_at=now), now=now)

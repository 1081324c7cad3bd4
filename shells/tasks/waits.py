"""Celery tasks: waitpoints (the pulse that resumes due timers and expired waits)."""
from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from triggers.waits import waitpoints_sweep


@shared_task(name="waits.sweep", ignore_result=False, soft_time_limit=60, time_limit=90)
def sweep() -> int:
    return waitpoints_sweep(now=timezone.now())

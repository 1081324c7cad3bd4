"""Celery tasks: webhook ingress housekeeping (the event ledger's retention)."""
from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from events.services.retention import events_purge


@shared_task(name="events.purge", ignore_result=False, soft_time_limit=600, time_limit=660)
def purge() -> int:
    return events_purge(now=timezone.now(), keep_days=settings.TICKWISE["EVENT_RETENTION_DAYS"])

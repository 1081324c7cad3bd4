"""Celery tasks: alerts. ``alerts.deliver`` sends one notification of an alert to the configured channels."""
from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from alerts.services import alert_deliver


@shared_task(name="alerts.deliver", acks_late=True, ignore_result=True, soft_time_limit=60, time_limit=90)
def deliver(alert_id: int, notification: int) -> int:
    return alert_deliver(int(alert_id), int(notification), now=timezone.now())

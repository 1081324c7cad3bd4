"""Celery tasks: events (routing a stored event to its subscriptions; the router's sweeper)."""
from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from triggers.routing import event_route_or_fail, events_route_stale


# The ingress sends this after the event's commit. A redelivered message meets
# the routes already taken and starts nothing twice; an error is written on the
# event (outcome failed), not retried forever.
@shared_task(name="events.route", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=120, time_limit=150)
def route(event_id: int) -> str | None:
    routed = event_route_or_fail(int(event_id), now=timezone.now())
    return routed.outcome if routed is not None else None


@shared_task(name="events.sweep_unrouted", ignore_result=False, soft_time_limit=120, time_limit=150)
def sweep_unrouted() -> int:
    return events_route_stale(now=timezone.now())

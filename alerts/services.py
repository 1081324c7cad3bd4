"""Raise, deliver and resolve alerts.

``alert_raise`` is called wherever trouble is noticed (the failure streak's
auto-pause, a routing breaker, the housekeeping pulse, the beat's watchdog).
An episode is sent once when it opens, and again only when it is raised after
the cool-down (``TICKWISE_ALERT_COOLDOWN``) since it was last sent; raises in
between only bump its counter. The send happens after commit, in the Celery
task ``alerts.deliver``: a raise inside a transaction that rolls back sends nothing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Now
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from . import channels
from .models import Alert, AlertDelivery, AlertKind, DeliveryState

log = logging.getLogger("tickwise.alerts")

DELIVER_TASK = "alerts.deliver"


@dataclass(frozen=True)
class Raised:
    alert_id: int
    opened: bool  # this raise opened the episode
    notification: int | None  # the notification this raise sends, None inside the cool-down


def alert_raise(kind: str, *, key: str, title: str, detail: str, workspace_id: int | None = None,
                now: datetime) -> Raised:
    """Record a raise of ``(kind, key)``; send it after commit when it opens an episode or the cool-down passed."""
    kind = AlertKind(kind)  # a kind that does not exist is a bug at the call site: ValueError names it
    with transaction.atomic():
        raised = _open(kind, key, title, detail, workspace_id, now) or _bump(kind, key, title, detail, now)
    log.error("alert %s %s: %s (%s)", kind.value, key, title,
              "sent" if raised.notification else "inside its cool-down, counted")
    if raised.notification:
        notification = raised.notification
        transaction.on_commit(lambda: alert_send_now(raised.alert_id, notification))
    return raised


def _open(kind: str, key: str, title: str, detail: str, workspace_id: int | None, now: datetime) -> Raised | None:
    """A new episode, or None when one is open (the partial unique constraint decides, even under a race)."""
    try:
        with transaction.atomic():
            alert = Alert.objects.create(kind=kind, key=key[:200], title=title[:200], detail=detail,
                                         workspace_id=workspace_id, opened_at=now, last_raised_at=now,
                                         notified_at=now)
    except IntegrityError:
        return None
    return Raised(alert.id, opened=True, notification=1)


def _bump(kind: str, key: str, title: str, detail: str, now: datetime) -> Raised:
    """Count a raise of the open episode; send it again only if this raise wins the cool-down's compare-and-set."""
    episode = Alert.objects.filter(kind=kind, key=key[:200], resolved_at__isnull=True)
    cooled = now - timedelta(seconds=settings.TICKWISE["ALERT_COOLDOWN"])
    resent = episode.filter(notified_at__lte=cooled).update(
        notified_at=now, notifications=F("notifications") + 1, raised_count=F("raised_count") + 1,
        last_raised_at=now, title=title[:200], detail=detail)
    if not resent:
        episode.update(raised_count=F("raised_count") + 1, last_raised_at=now, title=title[:200], detail=detail)
    # Read under the lock the UPDATE took: the episode cannot be resolved away before this commits.
    alert_id, notifications = episode.values_list("id", "notifications").get()
    return Raised(alert_id, opened=False, notification=notifications if resent else None)


def alert_send_now(alert_id: int, notification: int) -> None:
    """Enqueue ``alerts.deliver``; a broker that cannot be reached is logged (the alert stays recorded)."""
    if not channels.configured():
        return
    try:
        current_app.send_task(DELIVER_TASK, args=[alert_id, notification])
    except (KombuError, RedisError, OSError) as error:
        log.warning("could not enqueue alert %s: %s: %s", alert_id, type(error).__name__, error)


def alert_deliver(alert_id: int, notification: int, *, now: datetime) -> int:
    """Send one notification to every configured channel not yet tried for it; returns the sends that went out."""
    alert = Alert.objects.filter(id=alert_id).first()
    if alert is None:
        return 0  # deleted with its workspace meanwhile
    return sum(_deliver_one(alert, channel, notification, now=now) for channel in channels.configured())


def _deliver_one(alert: Alert, channel: channels.Channel, notification: int, *, now: datetime) -> bool:
    """Intent, call, outcome: the ``sending`` row first (once per notification and channel), then the result."""
    try:
        with transaction.atomic():
            delivery = AlertDelivery.objects.create(alert=alert, notification=notification, channel=channel.name,
                                                    target=channel.target[:500], started_at=now)
    except IntegrityError:
        return False  # a redelivered message: this channel was already tried for this notification
    try:
        status = channels.send(channel, alert, notification=notification, now=now)
    except channels.TransportError as error:
        log.warning("alert %s to %s failed: %s", alert.id, channel.name, error)
        _settle(delivery, DeliveryState.FAILED, status=error.status_code, error=str(error))
        return False
    _settle(delivery, DeliveryState.SENT, status=status)
    return True


def _settle(delivery: AlertDelivery, state: str, *, status: int | None, error: str = "") -> None:
    # The database's clock: the call took time since the task's ``now``.
    AlertDelivery.objects.filter(id=delivery.id).update(state=state, status_code=status, error=error[:2000],
                                                        finished_at=Now())


def alert_resolve(alert_ids: list[int], *, by: str, now: datetime) -> int:
    """Close open episodes; the next raise of the same kind and key opens a new one (and is sent)."""
    return Alert.objects.filter(id__in=alert_ids, resolved_at__isnull=True).update(resolved_at=now,
                                                                                   resolved_by=by[:150])


def alert_resolve_key(kind: str, key: str, *, by: str, now: datetime) -> int:
    """Close the open episode of ``(kind, key)`` when the condition cleared by itself (a check that passes)."""
    return Alert.objects.filter(kind=kind, key=key[:200], resolved_at__isnull=True).update(resolved_at=now,
                                                                                           resolved_by=by[:150])

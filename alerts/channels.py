"""Where alerts go: a webhook (Standard Webhooks signed; ``standard`` or Slack-compatible JSON) and email.

One function per channel. Each raises ``TransportError`` with a one-line
message when the send did not go through; the caller records the outcome.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

import httpx
from django.conf import settings
from django.core.mail import send_mail
from standardwebhooks.webhooks import Webhook

from .models import Alert

WEBHOOK_TIMEOUT = 10.0
FORMATS = ("standard", "slack")


class TransportError(Exception):
    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class Channel:
    name: str  # webhook, email
    target: str  # shown in the admin: the URL's host or the addresses


class AlertData(TypedDict):
    id: int
    kind: str
    key: str
    title: str
    detail: str
    workspace_id: int | None
    opened_at: str
    raised_count: int
    notification: int


def configured() -> list[Channel]:
    """The channels the settings name, in sending order."""
    conf = settings.TICKWISE
    found = []
    if conf["ALERT_WEBHOOK_URL"]:
        found.append(Channel("webhook", httpx.URL(conf["ALERT_WEBHOOK_URL"]).host))
    if conf["ALERT_EMAILS"]:
        found.append(Channel("email", ", ".join(conf["ALERT_EMAILS"])))
    return found


def send(channel: Channel, alert: Alert, *, notification: int, now: datetime) -> int | None:
    """Send; the HTTP status for a webhook, None for email. ``TransportError`` when it failed."""
    if channel.name == "webhook":
        return webhook_send(alert, notification=notification, now=now)
    email_send(alert, notification=notification)
    return None


def alert_data(alert: Alert, *, notification: int) -> AlertData:
    return {"id": alert.id, "kind": alert.kind, "key": alert.key, "title": alert.title, "detail": alert.detail,
            "workspace_id": alert.workspace_id, "opened_at": alert.opened_at.isoformat(),
            "raised_count": alert.raised_count, "notification": notification}


def webhook_body(alert: Alert, *, notification: int, fmt: str, now: datetime) -> dict[str, Any]:
    """``standard``: a Standard Webhooks event (type, timestamp, data); ``slack``: an incoming-webhook message."""
    if fmt == "slack":
        return {"text": f":rotating_light: *{alert.title}*\n{alert.detail}",
                "tickwise": alert_data(alert, notification=notification)}
    return {"type": f"alert.{alert.kind}", "timestamp": now.isoformat(),
            "data": alert_data(alert, notification=notification)}


def webhook_send(alert: Alert, *, notification: int, now: datetime) -> int:
    conf = settings.TICKWISE
    body = json.dumps(webhook_body(alert, notification=notification, fmt=conf["ALERT_WEBHOOK_FORMAT"], now=now))
    headers = {"content-type": "application/json", **_signature(alert, notification, body, now)}
    try:
        response = httpx.post(conf["ALERT_WEBHOOK_URL"], content=body, headers=headers, timeout=WEBHOOK_TIMEOUT)
    except httpx.HTTPError as error:
        raise TransportError(f"{type(error).__name__}: {error}") from error
    if response.status_code >= 300:
        raise TransportError(f"HTTP {response.status_code}: {response.text[:200]}", status_code=response.status_code)
    return response.status_code


def _signature(alert: Alert, notification: int, body: str, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers; the id is the same on every retry of this notification."""
    secret = settings.TICKWISE["ALERT_WEBHOOK_SECRET"]
    if not secret:
        return {}  # only a slack-format webhook may go unsigned (settings refuse it for ``standard``)
    msg_id = f"alert_{alert.id}_{notification}"
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, now, body)}


def email_send(alert: Alert, *, notification: int) -> None:
    try:
        send_mail(subject=f"[Tickwise] {alert.title}", message=_email_text(alert, notification),
                  from_email=None, recipient_list=settings.TICKWISE["ALERT_EMAILS"])
    except OSError as error:  # smtplib's errors are OSErrors
        raise TransportError(f"{type(error).__name__}: {error}") from error


def _email_text(alert: Alert, notification: int) -> str:
    repeat = f" (notification {notification}, raised {alert.raised_count} times)" if notification > 1 else ""
    return f"{alert.get_kind_display()}{repeat}\n\n{alert.title}\n\n{alert.detail}\n\nkey: {alert.key}\n"

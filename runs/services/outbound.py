"""Outbound completion webhooks: a run's outcome POSTed, signed, to the URL its definition names.

Created in the transaction that ends the run (``outbound_on_run_end``, from
``run_ended``), delivered by its own Celery task (``outbound.deliver``), never on
the run's own path. Every attempt claims the delivery with a conditional UPDATE
(a duplicate message finds nothing to claim), POSTs outside any transaction, and
records the attempt fenced by its number. Retries wait in the database
(``next_attempt_at``); the sweeper pulse publishes due and lost deliveries.
docs/events.md, "Outbound completion webhooks".
"""
from __future__ import annotations

import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Now

from core.faults import fault_point

from .. import sql
from ..models import TERMINAL_STATES, Run, RunState
from ..outbound import DeliveryStatus, OutboundAttempt, OutboundDelivery
from ..publish import BROKER_ERRORS
from .signing import SigningSecretError, signature_headers, signer

log = logging.getLogger("tickwise.outbound")

DELIVER_TASK = "outbound.deliver"
SCHEMES = ("http", "https")
# 4xx answers a retry cannot change; 408 and 429 say "later".
RETRYABLE_4XX = (408, 429)
# A delivery younger than this is left to its own on-commit publish.
PUBLISH_GRACE = timedelta(seconds=5)
SWEEP_BATCH = 500
# A receiver asking for more than this (a Retry-After of days) is waited on this long, as an agent is.
RETRY_AFTER_CAP = 3600  # seconds
LOST = "no outcome recorded: the worker was lost mid-attempt"


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: a status code, or an error that says why there was none."""

    status_code: int | None = None
    error: str = ""
    duration_ms: int | None = None
    permanent: bool = False
    retry_after: int = 0  # the receiver's own minimum wait (a Retry-After in seconds), up to RETRY_AFTER_CAP

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def attempt_limits() -> tuple[int, int]:
    """(soft, hard) seconds one attempt may take: a request may wait ``OUTBOUND_TIMEOUT`` per phase."""
    soft = settings.TICKWISE["OUTBOUND_TIMEOUT"] * 3 + 5
    return soft, soft + 5


# --- creation: in the transaction that ends the run ---------------------------------

@dataclass(frozen=True)
class EndedRun:
    """The run as its terminal transition left it: what the payload reports."""

    row: dict[str, Any]

    FIELDS = ("id", "state", "trigger", "schedule_id", "agent_id", "agent__name", "agent__workspace__slug", "output",
              "error_category", "error_message", "tick_at", "started_at", "finished_at", "attempt", "chain_id",
              "event_depth", "session_id")

    @classmethod
    def read(cls, run_id: int) -> EndedRun | None:
        row = Run.objects.filter(id=run_id).values(*cls.FIELDS).first()
        return cls(row) if row else None

    @property
    def state(self) -> str:
        return self.row["state"]

    @property
    def finished_at(self) -> datetime | None:
        return self.row["finished_at"]

    def data(self) -> dict[str, Any]:
        row = self.row
        renamed = {"id": "run_id", "agent__name": "agent", "agent__workspace__slug": "workspace"}
        return {renamed.get(name, name): row[name] for name in self.FIELDS}

def destination(run: Run) -> str:
    """The run's own URL (its schedule's or subscription's, copied at dispatch), else its agent's."""
    return run.completion_url or run.agent.completion_url


def outbound_on_run_end(run: Run) -> int | None:
    """Record the completion webhook of a run that just ended; its id, or None (no URL, skipped, a repeat).

    Called by the one winner of the run's terminal transition, inside its
    transaction; the UNIQUE ``(run, url)`` makes any second call a no-op. A
    run with no destination costs nothing here (the agent is already loaded).
    """
    url = destination(run)
    if not url:
        return None
    ended = EndedRun.read(run.id)
    if ended is None or ended.state == RunState.SKIPPED or ended.state not in TERMINAL_STATES:
        return None  # a skipped tick did no work: nothing to report (docs/events.md)
    delivery_id = _insert(run.id, url, ended)
    if delivery_id is not None:
        transaction.on_commit(lambda: outbound_publish_now([delivery_id]))
    return delivery_id


def completion_payload(ended: EndedRun) -> dict[str, Any]:
    """The body: ``{"type": "run.<state>", "timestamp", "data"}``, the contract in docs/events.md."""
    return {"type": f"run.{ended.state}", "timestamp": ended.finished_at, "data": ended.data()}


def _insert(run_id: int, url: str, ended: EndedRun) -> int | None:
    params: dict[str, str | int] = {
        "run": run_id, "url": url, "webhook_id": f"msg_{uuid.uuid4().hex}", "event_type": f"run.{ended.state}",
        "payload": json.dumps(completion_payload(ended), cls=DjangoJSONEncoder), "status": DeliveryStatus.PENDING}
    with connection.cursor() as cursor:
        cursor.execute(sql.OUTBOUND_INSERT, params)
        row = cursor.fetchone()
    return row[0] if row else None


# --- publishing -------------------------------------------------------------------

def outbound_publish_now(delivery_ids: list[int]) -> int:
    """Send one ``outbound.deliver`` message per delivery now; the deliveries sent.

    Marked published before sending (a worker cannot claim before the send),
    unmarked when the broker cannot be reached: the sweeper sends those later.
    """
    ids = list(OutboundDelivery.objects.filter(id__in=delivery_ids, status=DeliveryStatus.PENDING)
               .filter(_not_in_flight()).values_list("id", flat=True))
    if not ids:
        return 0
    OutboundDelivery.objects.filter(id__in=ids).update(published_at=Now(), claimed_until=None)
    try:
        for delivery_id in ids:
            current_app.send_task(DELIVER_TASK, args=[delivery_id])
    except BROKER_ERRORS as error:
        OutboundDelivery.objects.filter(id__in=ids).update(published_at=None)
        log.warning("could not publish %s delivery(ies), the sweeper will: %s: %s", len(ids),
                    type(error).__name__, error)
        return 0
    return len(ids)


def _not_in_flight() -> Q:
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=Now())


def outbound_sweep(*, now: datetime) -> int:
    """Publish pending deliveries that are due and have no live message; the deliveries sent.

    Three cases: a retry whose wait is over (unpublished since its attempt), a
    delivery whose on-commit publish never happened, and one whose message
    went missing (published long ago, or claimed by a worker whose claim ran
    out). A duplicate message is harmless: it finds nothing to claim.
    """
    stale = Now() - timedelta(seconds=settings.TICKWISE["REPUBLISH_AFTER"])
    due = (OutboundDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=Now())
           .filter(_not_in_flight()))
    waiting = Q(published_at__isnull=True) & (Q(attempts__gt=0) | Q(created_at__lte=now - PUBLISH_GRACE))
    lost = Q(published_at__lte=stale) | Q(claimed_until__isnull=False)
    ids = list(due.filter(waiting | lost).order_by("next_attempt_at").values_list("id", flat=True)[:SWEEP_BATCH])
    sent = outbound_publish_now(ids) if ids else 0
    if sent:
        log.info("outbound: published %s delivery(ies)", sent)
    return sent


# --- one attempt ------------------------------------------------------------------

def outbound_deliver(delivery_id: int, *, now: datetime) -> str | None:
    """One attempt: claim, POST, record. The delivery's status after it; None when not claimed."""
    delivery = _claim(delivery_id)
    if delivery is None:
        log.info("delivery %s: nothing to claim (settled, not due, or in flight elsewhere)", delivery_id)
        return None
    _record_lost(delivery, now=now)
    fault_point("outbound.after_claim")
    outcome = _post(delivery, now=now)
    fault_point("outbound.after_post")
    return _record(delivery, outcome, now=now)


def _claim(delivery_id: int) -> OutboundDelivery | None:
    """pending, due, not in flight → in flight, one more attempt; the database clock decides."""
    _, hard = attempt_limits()
    lease = timedelta(seconds=hard + settings.TICKWISE["LEASE_MARGIN"])
    claimed = (OutboundDelivery.objects.filter(id=delivery_id, status=DeliveryStatus.PENDING,
                                               next_attempt_at__lte=Now())
               .filter(_not_in_flight()).update(attempts=F("attempts") + 1, claimed_until=Now() + lease))
    if not claimed:
        return None
    return OutboundDelivery.objects.get(id=delivery_id)


def _record_lost(delivery: OutboundDelivery, *, now: datetime) -> None:
    """Earlier attempts that left no row (their worker died holding the claim) are written down."""
    if delivery.attempts < 2:
        return
    seen = set(delivery.attempt_log.values_list("number", flat=True))
    OutboundAttempt.objects.bulk_create(
        [OutboundAttempt(delivery=delivery, number=number, at=now, error=LOST)
         for number in range(1, delivery.attempts) if number not in seen], ignore_conflicts=True)


def _post(delivery: OutboundDelivery, *, now: datetime) -> Outcome:
    if urlsplit(delivery.url).scheme not in SCHEMES:
        return Outcome(error=f"refused: only {' and '.join(SCHEMES)} destinations are called", permanent=True)
    try:
        webhook = signer(settings.TICKWISE["WEBHOOK_SIGNING_SECRET"])
    except SigningSecretError as error:
        return Outcome(error=f"configuration: {error}")
    body = json.dumps(delivery.payload, separators=(",", ":"))
    headers = {**signature_headers(webhook, webhook_id=delivery.webhook_id, body=body, at=now),
               **chain_headers(delivery.payload["data"]), "content-type": "application/json"}
    started = time.monotonic()
    try:
        response = httpx.post(delivery.url, content=body.encode(), headers=headers, follow_redirects=False,
                              timeout=settings.TICKWISE["OUTBOUND_TIMEOUT"])
    except (httpx.HTTPError, SoftTimeLimitExceeded) as error:
        return Outcome(error=f"{type(error).__name__}: {error}"[:2000], duration_ms=_since(started))
    return _answered(response, duration_ms=_since(started))


def chain_headers(data: dict[str, Any]) -> dict[str, str]:
    """The causation a receiver echoes back so a loop across systems is still counted."""
    return {"tickwise-chain-id": str(data["chain_id"]), "tickwise-depth": str(data["event_depth"]),
            "tickwise-actor": str(data["agent_id"]), "tickwise-run": str(data["run_id"]),
            "tickwise-workspace": str(data["workspace"])}


def _answered(response: httpx.Response, *, duration_ms: int) -> Outcome:
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(status_code=code, duration_ms=duration_ms)
    permanent = 400 <= code < 500 and code not in RETRYABLE_4XX
    text = " ".join(response.text[:200].split())
    return Outcome(status_code=code, error=f"HTTP {code}" + (f": {text}" if text else ""),
                   duration_ms=duration_ms, permanent=permanent, retry_after=_seconds(response.headers))


def _seconds(headers: httpx.Headers) -> int:
    """A ``Retry-After`` given in seconds; 0 when absent or an HTTP date (then the backoff alone decides)."""
    value = headers.get("retry-after", "").strip()
    return int(value) if value.isdigit() else 0


def _record(delivery: OutboundDelivery, outcome: Outcome, *, now: datetime) -> str | None:
    """The attempt's row, and the delivery's next state if this attempt still holds it."""
    fields = _settle(delivery, outcome)
    with transaction.atomic():
        OutboundAttempt.objects.update_or_create(
            delivery=delivery, number=delivery.attempts,
            defaults={"at": now, "status_code": outcome.status_code, "error": outcome.error[:2000],
                      "duration_ms": outcome.duration_ms})
        held = OutboundDelivery.objects.filter(id=delivery.id, status=DeliveryStatus.PENDING,
                                               attempts=delivery.attempts)
        if not held.update(**fields):
            log.warning("delivery %s: attempt %s outlived its claim; recorded, state left to the newer attempt",
                        delivery.id, delivery.attempts)
            return None
    level = logging.INFO if fields["status"] != DeliveryStatus.DEAD else logging.ERROR
    log.log(level, "delivery %s attempt %s: %s -> %s", delivery.id, delivery.attempts,
            outcome.status_code or outcome.error, fields["status"])
    return str(fields["status"])


def _settle(delivery: OutboundDelivery, outcome: Outcome) -> dict[str, Any]:
    fields: dict[str, Any] = {"last_status_code": outcome.status_code, "last_error": outcome.error[:2000],
                              "claimed_until": None}
    if outcome.delivered:
        status = DeliveryStatus.DELIVERED
    elif outcome.permanent:
        status = DeliveryStatus.FAILED
    elif delivery.attempts >= settings.TICKWISE["OUTBOUND_MAX_ATTEMPTS"]:
        status = DeliveryStatus.DEAD
    else:
        # The retry waits in the database; the sweeper publishes it when due.
        wait = max(backoff(delivery.attempts),
                   timedelta(seconds=min(outcome.retry_after, RETRY_AFTER_CAP)))
        return {**fields, "status": DeliveryStatus.PENDING, "published_at": None, "next_attempt_at": Now() + wait}
    return {**fields, "status": status, "next_attempt_at": None, "finished_at": Now()}


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter in [ceiling/2, ceiling], capped."""
    base, cap = settings.TICKWISE["OUTBOUND_BACKOFF"], settings.TICKWISE["OUTBOUND_BACKOFF_MAX"]
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


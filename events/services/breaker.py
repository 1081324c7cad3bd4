"""The rate breaker: a subscription that starts too many runs too fast is held, not run.

States (``Subscription.breaker_state``), each move a compare-and-set in PostgreSQL:

- ``closed``: runs start; each is counted in a sliding window. More than
  ``breaker_limit`` in ``breaker_window_seconds`` moves it to ``held``
  (``held_at``), raises the alert once (the winner of that move), and the
  match that tripped it is recorded ``skipped: breaker_held``.
- ``held``: every match is recorded ``skipped: breaker_held``. The first match
  after ``breaker_cooldown_seconds`` moves it to ``probing`` and runs: the probe.
- ``probing``: matches are skipped while the probe is in flight. When the probe
  succeeded, the next match (or the router's sweeper, whichever comes first)
  closes the breaker; when it failed, the breaker is held again from then.
- ``subscription_release`` (admin action, API) closes it at any time.

The ledger's "run ended" hook cannot import this layer, so the probe's end is
read here, from the ledger, by the next router or sweeper pass: a breaker
closes at most one sweeper pulse after its probe succeeded.

The counter is a sorted set in Redis, trimmed and counted by one Lua script
(atomic on every node). When Redis is unreachable the router counts in
PostgreSQL instead, from the routes' runs: slower, never looser.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import NamedTuple

import redis
from django.conf import settings
from django.db.models import Q

from alerts.models import AlertKind
from alerts.services import alert_raise
from runs.models import Run, RunState

from ..models import BreakerState, Route, Subscription

log = logging.getLogger("tickwise.events.breaker")

# Trim the window, add this run, count: one atomic step. The member is the
# run's identity, so a redelivered routing message is not counted twice.
_COUNT_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(ARGV[2] * 1000) + 1000)
return redis.call('ZCARD', KEYS[1])
"""
_clients: dict[str, redis.Redis] = {}


class BreakerFields(NamedTuple):
    state: str
    held_at: datetime | None


def _client() -> redis.Redis | None:
    url = settings.TICKWISE.get("EVENTS_REDIS_URL", settings.CELERY_BROKER_URL)
    if not url:
        return None  # the fast path is turned off: PostgreSQL counts
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return _clients[url]


def _key(subscription_id: int) -> str:
    # Stacks sharing one Redis server (test runs, several deployments) each count their own.
    db = redis.connection.parse_url(settings.CELERY_BROKER_URL).get("db", 0)
    return f"tickwise:breaker:{db}:{settings.CELERY_TASK_DEFAULT_QUEUE}:{subscription_id}"


def breaker_count(subscription: Subscription, *, member: str, now: datetime) -> int:
    """Runs started by ``subscription`` in its window, this one included."""
    client = _client()
    if client is not None:
        try:
            count = client.eval(_COUNT_SCRIPT, 1, _key(subscription.id), now.timestamp(),
                                subscription.breaker_window_seconds, member)
            return int(count)
        except redis.RedisError as error:
            log.warning("breaker counter unavailable (%s); counting subscription %s in PostgreSQL",
                        error, subscription.id)
    return _ledger_count(subscription, now=now) + 1


def _ledger_count(subscription: Subscription, *, now: datetime) -> int:
    """The fail-safe: runs the subscription started in its window (since it was last held), from the ledger.

    The subscription's row is locked until the routing transaction ends, so
    two routers of the same subscription count one after the other (each
    sees the other's run), as the Lua script makes them do in Redis.
    """
    Subscription.objects.select_for_update().filter(id=subscription.id).values_list("id", flat=True).first()
    since = now - timedelta(seconds=subscription.breaker_window_seconds)
    if subscription.held_at is not None and subscription.held_at > since:
        since = subscription.held_at
    return (Route.objects.filter(subscription_id=subscription.id, created_at__gt=since, run__isnull=False)
            .exclude(run__state=RunState.SKIPPED).count())


def breaker_reset(subscription_id: int) -> None:
    """Forget the window's count (the breaker closed): the runs before it do not trip it again."""
    client = _client()
    if client is None:
        return
    try:
        client.delete(_key(subscription_id))
    except redis.RedisError as error:
        log.warning("could not reset breaker counter of subscription %s: %s", subscription_id, error)


def breaker_trip(subscription: Subscription, *, count: int, now: datetime) -> bool:
    """closed → held; True for the one caller that moved it (it raises the alert)."""
    moved = Subscription.objects.filter(id=subscription.id, breaker_state=BreakerState.CLOSED).update(
        breaker_state=BreakerState.HELD, held_at=now)
    if moved:
        subscription.breaker_state, subscription.held_at = BreakerState.HELD, now
        _breaker_tripped(subscription, count=count, now=now)
    return bool(moved)


def _breaker_tripped(subscription: Subscription, *, count: int, now: datetime) -> None:
    """The alert, once per trip (only the compare-and-set's winner calls this).

    Raised inside the routing transaction: sent after it commits, gone with it if it rolls back.
    """
    detail = (f"{count} runs in {subscription.breaker_window_seconds}s (limit {subscription.breaker_limit}); "
              f"matches are recorded skipped: breaker_held. One probe runs after "
              f"{subscription.breaker_cooldown_seconds}s; or release it (admin action, "
              f"POST /api/v1/subscriptions/{subscription.id}/release).")
    alert_raise(AlertKind.BREAKER_TRIP, key=f"subscription:{subscription.id}",
                title=f"Subscription {subscription.name} held by its rate breaker", detail=detail,
                workspace_id=subscription.workspace_id, now=now)


def breaker_probe_start(subscription: Subscription, *, now: datetime) -> bool:
    """held → probing once the cool-down passed; True for the one caller whose match becomes the probe."""
    if subscription.held_at is None or now < subscription.held_at + timedelta(
            seconds=subscription.breaker_cooldown_seconds):
        return False
    moved = Subscription.objects.filter(id=subscription.id, breaker_state=BreakerState.HELD,
                                        held_at=subscription.held_at).update(breaker_state=BreakerState.PROBING)
    if moved:
        subscription.breaker_state = BreakerState.PROBING
    return bool(moved)


def probe_run(subscription: Subscription) -> Run | None:
    """The probe: the one run the subscription started since it was held (None while it is being routed)."""
    route = (Route.objects.filter(subscription_id=subscription.id, run__isnull=False)
             .filter(Q(created_at__gte=subscription.held_at) if subscription.held_at else Q())
             .exclude(run__state=RunState.SKIPPED).select_related("run").order_by("-id").first())
    return route.run if route is not None else None


def breaker_settle_probe(subscription: Subscription, *, now: datetime) -> str:
    """A probing breaker after its probe: closed (it succeeded), held again (it failed), or still probing."""
    probe = probe_run(subscription)
    if probe is None or probe.state in (RunState.PENDING, RunState.RUNNING):
        return subscription.breaker_state
    probing = Subscription.objects.filter(id=subscription.id, breaker_state=BreakerState.PROBING)
    if probe.state == RunState.SUCCEEDED:
        if probing.update(breaker_state=BreakerState.CLOSED):
            breaker_reset(subscription.id)
            log.warning("subscription %s: probe run %s succeeded; breaker closed", subscription.id, probe.id)
    elif probing.update(breaker_state=BreakerState.HELD, held_at=now):
        log.error("subscription %s: probe run %s ended %s; held again", subscription.id, probe.id, probe.state)
    subscription.breaker_state, subscription.held_at = breaker_fields(subscription.id)  # ours or another's move
    return subscription.breaker_state


def breaker_fields(subscription_id: int) -> BreakerFields:
    """The breaker's current columns (the router's copy may be older than another router's move)."""
    row = Subscription.objects.filter(id=subscription_id).values_list("breaker_state", "held_at").get()
    return BreakerFields(state=row[0], held_at=row[1])

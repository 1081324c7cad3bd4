"""Event routing: each stored event becomes one run per matching subscription, or a row saying why not.

``event_route`` reads one event, finds the live subscriptions of its
workspace that match it (type, then payload equalities) and, for each, in
its own transaction: claims the ``(subscription, event)`` route (a unique
constraint: a redelivered message, a replay or a second router finds it
taken and does nothing), decides the loop breakers in order (self-trigger,
depth, the rate breaker, the debounce), and dispatches the run through the
one dispatch path with identity ``subscription|event``, pending or skipped
with its reason. Nothing is dropped silently: a refusal is a skipped run
row, a routing error is written on the event. See docs/events.md.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q

from core.inputs import MISSING, render_event_template
from events.matching import event_view, payload_matches, session_id_for, session_value, type_matches
from events.models import BreakerState, InboundEvent, Route, RoutingOutcome, SessionKeyMode, Subscription
from events.services import breaker
from events.services.ingest import payload_digest
from runs.models import Run, RunState, SkipReason, Trigger
from runs.services.dispatch import Causation, RunPolicy, UnscheduledRequest, run_dispatch_unscheduled, unscheduled_key
from runs.sql import column
from triggers.waits import waitpoints_complete_for_event
from workspaces.audit import Actor, audit_record

log = logging.getLogger("tickwise.events.routing")

# The (subscription, event) pair is claimed by its unique constraint
# (``route_once_per_subscription``): a redelivered routing message, a replay or
# a second router meets the existing row and gets nothing back, "already
# routed". ``created_at`` is the router's ``now`` (the debounce and breaker
# windows are measured on it). The routing layer's only hand-written statement.
_ROUTE_COLUMNS = ", ".join(column(Route, name) for name in ("event", "subscription", "created_at"))
_ROUTE_INSERT = (f"INSERT INTO {Route._meta.db_table} ({_ROUTE_COLUMNS}) "
                 f"VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING id")


class RoutingError(ValueError):
    """This subscription cannot route this event (e.g. its session key is missing): written on the event."""


@dataclass
class Routed:
    """What one routing pass did with one event."""

    event_id: int
    outcome: str = RoutingOutcome.NO_MATCH
    runs: list[Run] = field(default_factory=list)  # new rows: pending or skipped with a reason
    already: list[int] = field(default_factory=list)  # subscriptions that had routed it before
    errors: list[str] = field(default_factory=list)


def event_route(event_id: int, *, now: datetime) -> Routed | None:
    """Route one stored event; None when it no longer exists (purged)."""
    event = InboundEvent.objects.select_related("source", "workspace").filter(id=event_id).first()
    if event is None:
        log.warning("event %s no longer exists; nothing to route", event_id)
        return None
    view = event_view(event)
    routed = Routed(event_id=event.id)
    matched = subscriptions_matching(event, view)
    for subscription in matched:
        _route_isolated(event, view, subscription, routed, now=now)
    waitpoints_complete_for_event(event, view, now=now)  # the workspace's runs parked on such an event
    routed.outcome = _outcome(matched, routed)
    InboundEvent.objects.filter(id=event.id).update(outcome=routed.outcome, routed_at=now,
                                                    routing_error="\n".join(routed.errors)[:4000])
    return routed


def subscriptions_matching(event: InboundEvent, view: dict[str, Any]) -> list[Subscription]:
    """The live subscriptions of the event's workspace that take it, in id order (a stable routing order)."""
    prefixes = _type_prefixes(event.type)
    # A subscription of a deleted agent is as good as deleted (its runs would have nowhere to go).
    candidates = (Subscription.objects.filter(workspace_id=event.workspace_id, deleted_at__isnull=True,
                                              paused=False, agent__deleted_at__isnull=True)
                  .filter(Q(event_type=event.type) | Q(event_type__in=prefixes))
                  .select_related("agent", "workspace").order_by("id"))
    return [s for s in candidates if type_matches(s.event_type, event.type) and payload_matches(s.match, view)]


def _type_prefixes(event_type: str) -> list[str]:
    """``a.b.c`` is taken by ``a.*`` and ``a.b.*``: every proper prefix, as a subscription spells it."""
    parts = event_type.split(".")
    return [".".join(parts[:i]) + ".*" for i in range(1, len(parts))]


def _outcome(matched: list[Subscription], routed: Routed) -> str:
    if routed.errors:
        return RoutingOutcome.FAILED
    return RoutingOutcome.ROUTED if matched else RoutingOutcome.NO_MATCH


def _route_isolated(event: InboundEvent, view: dict[str, Any], subscription: Subscription, routed: Routed,
                    *, now: datetime) -> None:
    """One subscription's route; its failure is written on the event and the others go on."""
    try:
        run = _route_one(event, view, subscription, now=now)
    except RoutingError as error:
        routed.errors.append(f"subscription {subscription.name} ({subscription.id}): {error}")
        return
    except Exception as error:  # one bad subscription never stops the event's other routes
        log.exception("routing event %s to subscription %s failed", event.id, subscription.id)
        routed.errors.append(f"subscription {subscription.name} ({subscription.id}): "
                             f"{type(error).__name__}: {error}")
        return
    if run is None:
        routed.already.append(subscription.id)
    else:
        routed.runs.append(run)


def _route_one(event: InboundEvent, view: dict[str, Any], subscription: Subscription,
               *, now: datetime) -> Run | None:
    """The route and its run in one transaction; None when the pair was routed before."""
    with transaction.atomic():
        route_id = _route_insert(event_id=event.id, subscription_id=subscription.id, now=now)
        if route_id is None:
            return None
        identity = route_identity(subscription, event)
        request = _request(event, view, subscription, identity=identity, now=now)
        skip = _refusal(event, subscription, identity=identity, now=now)
        if skip:
            request = _skipped(request, skip)
        run = run_dispatch_unscheduled(subscription.agent, request, now=now)
        if run is None:
            # The run outlived its route (an event purged and delivered again): link the one row.
            run = Run.objects.get(idempotency_key=unscheduled_key(Trigger.EVENT, identity))
        Route.objects.filter(id=route_id).update(run=run)
    return run


def _route_insert(*, event_id: int, subscription_id: int, now: datetime) -> int | None:
    """The new route's id, or None when the pair was already routed."""
    with connection.cursor() as cursor:
        cursor.execute(_ROUTE_INSERT, [event_id, subscription_id, now])
        row = cursor.fetchone()
    return row[0] if row else None


def route_identity(subscription: Subscription, event: InboundEvent) -> str:
    """The run's identity: the pair, never a time (two events in one microsecond are two runs)."""
    return f"{subscription.id}|{event.id}"


def _skipped(request: UnscheduledRequest, reason: str) -> UnscheduledRequest:
    fields = {name: getattr(request, name) for name in UnscheduledRequest.__dataclass_fields__}
    fields.update(state=RunState.SKIPPED, skip_reason=reason)
    return UnscheduledRequest(**fields)


def _request(event: InboundEvent, view: dict[str, Any], subscription: Subscription, *, identity: str,
             now: datetime) -> UnscheduledRequest:
    return UnscheduledRequest(
        trigger=Trigger.EVENT, identity=identity, input=event_input(subscription, view, now=now),
        policy=subscription_policy(subscription), session_id=_session_id(subscription, view),
        causation=_causation(event), completion_url=subscription.completion_url or subscription.agent.completion_url)


def event_input(subscription: Subscription, view: dict[str, Any], *, now: datetime) -> str:
    """The subscription's template over the event; no template: the event itself, as JSON."""
    if not subscription.input_template:
        return json.dumps(view, sort_keys=True)
    values = {"date": now.date().isoformat(), "day_of_week": now.strftime("%A"), "timestamp": int(now.timestamp()),
              "tick_at": now.isoformat(), "subscription": subscription.name}
    return render_event_template(subscription.input_template, values, view)


def subscription_policy(subscription: Subscription) -> RunPolicy:
    # A keyed session is a conversation: the agent gets the session's earlier exchanges.
    mode = "persistent" if subscription.session_mode == SessionKeyMode.KEYED else "new"
    return RunPolicy(timeout_seconds=subscription.timeout_seconds, max_attempts=subscription.max_attempts,
                     retry_backoff_seconds=subscription.retry_backoff_seconds,
                     retry_backoff_max_seconds=subscription.retry_backoff_max_seconds,
                     overlap_policy=subscription.overlap_policy, max_concurrent=subscription.max_concurrent,
                     concurrency_scope=subscription.concurrency_scope, session_mode=mode)


def _session_id(subscription: Subscription, view: dict[str, Any]) -> str:
    if subscription.session_mode != SessionKeyMode.KEYED:
        return ""  # a new session per event
    value = session_value(subscription.session_key, view)
    if value is MISSING:
        raise RoutingError(f"session key {subscription.session_key} is missing or empty in the event")
    return session_id_for(subscription.id, value)


def _causation(event: InboundEvent) -> Causation:
    # An event without a chain starts one: derived from the event, so every run it starts shares it.
    chain = event.chain_id or hashlib.sha256(f"event:{event.id}".encode()).hexdigest()[:32]
    return Causation(chain_id=chain, parent_run_id=event.parent_run_id, event_depth=event.depth,
                     actor_id=event.actor_id)


def _refusal(event: InboundEvent, subscription: Subscription, *, identity: str, now: datetime) -> str:
    """The loop breaker that refuses this run, in order; empty: it runs."""
    if event.actor_id is not None and event.actor_id == subscription.agent_id and not subscription.allow_self_trigger:
        return SkipReason.SELF_TRIGGER
    if event.depth > event.workspace.event_depth_limit:
        return SkipReason.DEPTH_EXCEEDED
    # Another router may have moved the breaker since this one read the subscription.
    subscription.breaker_state, subscription.held_at = breaker.breaker_fields(subscription.id)
    if subscription.breaker_state == BreakerState.PROBING:
        breaker.breaker_settle_probe(subscription, now=now)
    if subscription.breaker_state != BreakerState.CLOSED and not _probe_due(subscription, now=now):
        return SkipReason.BREAKER_HELD
    if _duplicate_payload(event, subscription, now=now):
        return SkipReason.DUPLICATE_PAYLOAD
    if subscription.breaker_state == BreakerState.HELD:
        # The cool-down passed: one match (the winner of the move to probing) runs as the probe.
        return "" if breaker.breaker_probe_start(subscription, now=now) else SkipReason.BREAKER_HELD
    count = breaker.breaker_count(subscription, member=identity, now=now)
    if count > subscription.breaker_limit:
        breaker.breaker_trip(subscription, count=count, now=now)
        return SkipReason.BREAKER_HELD
    return ""


def _probe_due(subscription: Subscription, *, now: datetime) -> bool:
    if subscription.breaker_state != BreakerState.HELD or subscription.held_at is None:
        return False
    return (now - subscription.held_at).total_seconds() >= subscription.breaker_cooldown_seconds


def _duplicate_payload(event: InboundEvent, subscription: Subscription, *, now: datetime) -> bool:
    """The same payload ran for this subscription within its debounce window."""
    if not subscription.debounce_seconds:
        return False
    since = now - timedelta(seconds=subscription.debounce_seconds)
    return (Route.objects.filter(subscription_id=subscription.id, created_at__gte=since, run__isnull=False,
                                 event__payload_hash=payload_hash(event))
            .exclude(event_id=event.id).exclude(run__state=RunState.SKIPPED).exists())


def payload_hash(event: InboundEvent) -> str:
    if not event.payload_hash:
        # Stored by the ingress; computed here (the same way) once for an event stored without it.
        event.payload_hash = payload_digest(event.payload)
        InboundEvent.objects.filter(id=event.id, payload_hash="").update(payload_hash=event.payload_hash)
    return event.payload_hash


# An event younger than this is left to its own after-commit routing message.
ROUTE_GRACE = timedelta(seconds=30)
SWEEP_BATCH = 200


def events_route_stale(*, now: datetime) -> int:
    """Route events still ``pending`` past the grace (their message was lost after commit); settle probes.

    One bad event never stops the pass: it is settled ``failed`` with the
    error written on it, and the pass goes on.
    """
    ids = list(InboundEvent.objects.filter(outcome=RoutingOutcome.PENDING, received_at__lte=now - ROUTE_GRACE)
               .order_by("received_at").values_list("id", flat=True)[:SWEEP_BATCH])
    for event_id in ids:
        event_route_or_fail(event_id, now=now)
    for subscription in Subscription.objects.filter(breaker_state=BreakerState.PROBING):
        breaker.breaker_settle_probe(subscription, now=now)
    return len(ids)


def event_route_or_fail(event_id: int, *, now: datetime) -> Routed | None:
    """``event_route`` for a task or a sweeper: an error ends as ``failed`` on the event, never as a retry loop."""
    try:
        return event_route(event_id, now=now)
    except Exception as error:
        log.exception("routing event %s failed", event_id)
        InboundEvent.objects.filter(id=event_id).update(
            outcome=RoutingOutcome.FAILED, routed_at=now, routing_error=f"{type(error).__name__}: {error}"[:4000])
        return None


def event_replay(event_id: int, *, now: datetime, actor: Actor) -> Routed | None:
    """Route a stored event again: new runs only where its (subscription, event) pair is new; audited."""
    routed = event_route(event_id, now=now)
    if routed is not None:
        event = InboundEvent.objects.get(id=event_id)
        audit_record(actor, obj=event, action="replay", now=now, workspace_id=event.workspace_id,
                     detail=f"{len(routed.runs)} new run(s), {len(routed.already)} already routed, "
                            f"{len(routed.errors)} error(s): {routed.outcome}")
    return routed

"""Routing with real worker and beat processes and a real HTTP agent on loopback.

The ``events.route`` task routes each stored event; runs execute under the
subscription's policy (``buffer`` in the session scope), and the agent server
records what it received, in the order it received it.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from itertools import count

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from events.models import InboundEvent, RoutingOutcome, Subscription
from runs.models import Run, RunState
from runs.pulses import ensure_pulses
from scheduler_project.celery import app
from schedules.models import Agent
from tests.adapters.conftest import AgentServer, Reply

pytestmark = pytest.mark.django_db(transaction=True)
_ids = count(1)


@pytest.fixture
def server() -> Iterator[AgentServer]:
    # Slow enough that the session's later events arrive while its first run is in flight.
    running = AgentServer(Reply(body={"ok": True}, delay=1.0)).start()
    yield running
    running.stop()


def store(agent: Agent, type_: str, data: dict) -> InboundEvent:
    body = {"type": type_, "data": data}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return InboundEvent.objects.create(workspace_id=agent.workspace_id, event_id=f"evt-{next(_ids)}", type=type_,
                                       received_at=timezone.now(), payload=body, payload_hash=digest)


def route_by_task(event: InboundEvent, waiter) -> None:
    app.send_task("events.route", args=[event.id])
    waiter(lambda: InboundEvent.objects.filter(id=event.id).exclude(outcome=RoutingOutcome.PENDING).exists(),
           timeout=60, what=f"event {event.id} to be routed")


def test_events_with_one_session_key_reach_one_session_in_order(stack, waiter, server):
    ensure_pulses(IntervalSchedule, PeriodicTask)  # the outbox sweeper offers buffered runs again
    agent = Agent.objects.create(name="chatbot", adapter="http", config={"url": f"{server.url}/run"})
    Subscription.objects.create(agent=agent, workspace_id=agent.workspace_id, name="chat", event_type="chat.*",
                                session_mode="keyed", session_key="data.chat_id", debounce_seconds=0,
                                input_template="{{event.data.text}}")
    stack.worker(concurrency=2)
    stack.beat()
    for chat_id, text in ((42, "first"), (42, "second"), (7, "elsewhere"), (42, "third")):
        route_by_task(store(agent, "chat.message", {"chat_id": chat_id, "text": text}), waiter)
    runs = list(Run.objects.filter(agent=agent).order_by("id"))
    assert len(runs) == 4 and {run.overlap_policy for run in runs} == {"buffer"}
    waiter(lambda: Run.objects.filter(agent=agent, state=RunState.SUCCEEDED).count() == 4, timeout=120,
           what="the four runs to succeed")
    received = [(d.body["input"], d.body["session_id"]) for d in server.deliveries]
    session_42 = [text for text, session in received if session == runs[0].session_id]
    assert session_42 == ["first", "second", "third"]  # one session, in order, none skipped
    (session_7,) = {session for text, session in received if text == "elsewhere"}
    assert session_7 != runs[0].session_id
    # One at a time: each run of the session started after the one before it finished.
    ordered = sorted((r for r in Run.objects.filter(agent=agent, session_id=runs[0].session_id)), key=lambda r: r.id)
    assert all(later.started_at >= earlier.finished_at for earlier, later in zip(ordered, ordered[1:]))


def test_a_redelivered_route_task_starts_nothing_twice(stack, waiter):
    agent = Agent.objects.create(name="echoer", adapter="echo")
    for name in ("one", "two"):
        Subscription.objects.create(agent=agent, workspace_id=agent.workspace_id, name=name, event_type="a.b")
    event = store(agent, "a.b", {"n": 1})
    stack.worker(concurrency=2)
    for _ in range(5):
        app.send_task("events.route", args=[event.id])
    waiter(lambda: Run.objects.filter(agent=agent, state=RunState.SUCCEEDED).count() == 2, timeout=60,
           what="both subscriptions' runs to succeed")
    assert Run.objects.filter(agent=agent).count() == 2
    assert InboundEvent.objects.get(id=event.id).outcome == RoutingOutcome.ROUTED


def test_a_flood_holds_the_subscription_and_a_successful_probe_closes_it(stack, waiter):
    agent = Agent.objects.create(name="flooded", adapter="echo")
    subscription = Subscription.objects.create(
        agent=agent, workspace_id=agent.workspace_id, name="flood", event_type="flood.*", debounce_seconds=0,
        breaker_limit=3, breaker_window_seconds=600, breaker_cooldown_seconds=2)
    stack.worker(concurrency=2)
    for n in range(6):
        route_by_task(store(agent, "flood.x", {"n": n}), waiter)
    runs = list(Run.objects.filter(agent=agent).order_by("id"))
    assert [r.skip_reason for r in runs] == ["", "", "", "breaker_held", "breaker_held", "breaker_held"]
    subscription.refresh_from_db()
    assert subscription.breaker_state == "held"
    # After the cool-down the next match is the probe; a real worker runs it.
    waiter(lambda: (timezone.now() - subscription.held_at).total_seconds() > 2, timeout=10, what="the cool-down")
    route_by_task(store(agent, "flood.x", {"n": "probe"}), waiter)
    probe = Run.objects.filter(agent=agent).latest("id")
    assert probe.state != RunState.SKIPPED
    assert Subscription.objects.get(id=subscription.id).breaker_state == "probing"
    waiter(lambda: Run.objects.filter(id=probe.id, state=RunState.SUCCEEDED).exists(), timeout=60,
           what="the probe to succeed")
    route_by_task(store(agent, "flood.x", {"n": "after"}), waiter)  # sees the probe's success: closed, runs
    assert Subscription.objects.get(id=subscription.id).breaker_state == "closed"
    assert Run.objects.filter(agent=agent).latest("id").skip_reason == ""

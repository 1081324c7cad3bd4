"""The loop, end to end: an agent whose completion webhook points back at a source its own subscription hears.

Real gunicorn (the hook), worker and beat processes, and a real HTTP agent on
loopback. Each finished run posts its signed ``run.succeeded`` with the chain
headers; the ingress stores it one hop deeper, with the agent as its actor; the
router decides. With self-trigger allowed the chain runs until the workspace's
depth limit and the next hop is a visible ``skipped: depth_exceeded`` row; with
self-trigger refused it stops at the first hop with ``skipped: self_trigger``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from events.models import InboundEvent, RoutingOutcome, SourceKind, Subscription, WebhookSource
from runs.models import Run, RunState, SkipReason, Trigger
from runs.outbound import DeliveryStatus, OutboundDelivery
from runs.pulses import ensure_pulses
from schedules.models import Agent
from tests.adapters.conftest import AgentServer
from tests.conftest import Stack, _database_url
from tests.shells.api.conftest import start_api
from workspaces.models import Workspace, default_workspace

pytestmark = pytest.mark.django_db(transaction=True)

KEY = base64.b64encode(b"loop-secret-key-0123456789abcdef").decode()
SECRET = f"whsec_{KEY}"
ENV = {"LOOP_TEST_SECRET": SECRET, "TICKWISE_WEBHOOK_SECRET": SECRET, "TICKWISE_OUTBOUND_BACKOFF": "1",
       "TICKWISE_OUTBOUND_BACKOFF_MAX": "2", "TICKWISE_OUTBOUND_TIMEOUT": "5"}
DEPTH_LIMIT = 3


@pytest.fixture(scope="module")
def hooks_url(django_db_setup, tmp_path_factory) -> Iterator[str]:
    env = {**os.environ, "DATABASE_URL": _database_url(), "REDIS_URL": settings.CELERY_BROKER_URL,
           "PYTHONUNBUFFERED": "1", **ENV}
    server = Stack(env, tmp_path_factory.mktemp("loop-hooks"))
    try:
        yield start_api(server, "loop-hooks")
    finally:
        server.stop_all()


@pytest.fixture
def agent_server() -> Iterator[AgentServer]:
    running = AgentServer().start()
    yield running
    running.stop()


def kickoff(hooks_url: str) -> None:
    """The chain's root: an outside sender's signed event (no chain headers), signed per the spec."""
    body = json.dumps({"type": "run.kickoff", "data": {"note": "start"}}).encode()
    msg_id, timestamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    digest = hmac.new(base64.b64decode(KEY), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    headers = {"webhook-id": msg_id, "webhook-timestamp": timestamp, "content-type": "application/json",
               "webhook-signature": "v1," + base64.b64encode(digest).decode()}
    response = httpx.post(f"{hooks_url}/hooks/loop", content=body, headers=headers, timeout=30)
    assert response.status_code == 202, response.text


def loop_agent(stack: Stack, hooks_url: str, agent_server: AgentServer, *, self_trigger: bool) -> Agent:
    ensure_pulses(IntervalSchedule, PeriodicTask)  # the sweepers, should a message be lost
    Workspace.objects.filter(id=default_workspace()).update(event_depth_limit=DEPTH_LIMIT)
    WebhookSource.objects.create(slug="loop", kind=SourceKind.STANDARD,
                                 secrets=[{"env": "LOOP_TEST_SECRET", "retire_at": None}])
    agent = Agent.objects.create(name="narcissus", adapter="http", config={"url": f"{agent_server.url}/run"},
                                 completion_url=f"{hooks_url}/hooks/loop")
    Subscription.objects.create(agent=agent, workspace_id=agent.workspace_id, name="hears-itself",
                                event_type="run.*", allow_self_trigger=self_trigger, debounce_seconds=0,
                                breaker_limit=100)
    stack.worker(concurrency=2, extra_env=ENV)
    stack.beat(extra_env=ENV)
    return agent


def settled(agent: Agent) -> bool:
    """Nothing left in flight: every run ended, every completion delivered, every event routed."""
    return (not Run.objects.filter(agent=agent, state__in=[RunState.PENDING, RunState.RUNNING]).exists()
            and not OutboundDelivery.objects.filter(run__agent=agent, status=DeliveryStatus.PENDING).exists()
            and not InboundEvent.objects.filter(outcome=RoutingOutcome.PENDING).exists())


def test_with_self_trigger_allowed_the_chain_stops_at_the_depth_limit(stack, waiter, hooks_url, agent_server):
    agent = loop_agent(stack, hooks_url, agent_server, self_trigger=True)
    kickoff(hooks_url)
    stopped = waiter(lambda: Run.objects.filter(agent=agent, skip_reason=SkipReason.DEPTH_EXCEEDED).first(),
                     timeout=180, what="the chain to reach the depth limit")
    waiter(lambda: settled(agent), timeout=60, what="the chain to settle")
    runs = list(Run.objects.filter(agent=agent).order_by("id"))
    assert [(r.state, r.event_depth) for r in runs] == [
        *((RunState.SUCCEEDED, depth) for depth in range(DEPTH_LIMIT + 1)),
        (RunState.SKIPPED, DEPTH_LIMIT + 1)]
    assert stopped == runs[-1] and {r.trigger for r in runs} == {Trigger.EVENT}
    assert len({r.chain_id for r in runs}) == 1  # one chain, from the root event to the refusal
    assert [r.parent_run_id for r in runs[1:]] == [r.id for r in runs[:-1]]
    assert all(r.actor_id == agent.id for r in runs[1:])
    assert len(agent_server.deliveries) == DEPTH_LIMIT + 1  # the refused hop never reached the agent
    # A skipped run did no work: it posts no completion, so the chain has ended, not paused.
    assert not OutboundDelivery.objects.filter(run=stopped).exists()
    time.sleep(3)
    assert Run.objects.filter(agent=agent).count() == len(runs)


def test_with_self_trigger_refused_the_chain_stops_at_the_first_hop(stack, waiter, hooks_url, agent_server):
    agent = loop_agent(stack, hooks_url, agent_server, self_trigger=False)
    kickoff(hooks_url)
    waiter(lambda: Run.objects.filter(agent=agent, skip_reason=SkipReason.SELF_TRIGGER).exists(), timeout=120,
           what="the agent's own completion to be refused")
    waiter(lambda: settled(agent), timeout=60, what="the chain to settle")
    runs = list(Run.objects.filter(agent=agent).order_by("id"))
    assert [(r.state, r.skip_reason, r.event_depth) for r in runs] == [
        (RunState.SUCCEEDED, "", 0), (RunState.SKIPPED, SkipReason.SELF_TRIGGER, 1)]
    assert runs[1].parent_run_id == runs[0].id and runs[1].actor_id == agent.id
    assert len(agent_server.deliveries) == 1

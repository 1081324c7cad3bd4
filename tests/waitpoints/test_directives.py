"""A ``wait`` directive in an HTTP agent's answer parks the run in the transaction that records the answer.

The agent answers ``{"tickwise": {"wait": {...}}}``; the worker applies it
as the run's own ``wait`` tool call: the run ends its attempt ``waiting``
with the answer (and the waitpoint) as its output, and resumes like any wait.
"""
from __future__ import annotations

import json

import pytest
from django.utils import timezone

from runs.models import Run, RunState, Trigger
from runs.services.dispatch import RunPolicy, UnscheduledRequest, run_dispatch_unscheduled
from schedules.models import Agent
from tests.adapters.conftest import AgentServer, Delivery, Reply
from triggers.waits import waitpoint_complete
from waitpoints.models import Waitpoint, WaitState

pytestmark = pytest.mark.django_db(transaction=True)


def answer(delivery: Delivery) -> Reply:
    if delivery.body["trigger"] == Trigger.RESUME:
        return Reply(body={"resumed_with": json.loads(delivery.body["input"])})
    return Reply(body={"text": "asked for approval", "tickwise": {
        "wait": {"kind": "token", "timeout_seconds": 600, "reason": "approval"}}})


def test_a_wait_directive_parks_the_run_with_its_answer_and_it_resumes(stack, waiter):
    server = AgentServer(answer).start()
    try:
        agent = Agent.objects.create(name="directed", adapter="http", config={"url": f"{server.url}/run"})
        run = run_dispatch_unscheduled(agent, UnscheduledRequest(
            trigger=Trigger.MANUAL, identity="directive", input="deploy", policy=RunPolicy(max_attempts=1)),
            now=timezone.now())
        assert run is not None
        stack.worker()
        waiter(lambda: Run.objects.get(id=run.id).state == RunState.WAITING, timeout=60, what="the run to park")
        waitpoint = Waitpoint.objects.get(run=run)
        parked = Run.objects.get(id=run.id)
        assert parked.output["text"] == "asked for approval"
        assert parked.output["tickwise_results"][0]["waitpoint"] == str(waitpoint.id)
        assert waitpoint.reason == "approval" and waitpoint.state == WaitState.WAITING
        done = waitpoint_complete(waitpoint.id, payload={"approved": True}, by="test", now=timezone.now())
        waiter(lambda: Run.objects.get(id=done.waitpoint.resume_run_id).state == RunState.SUCCEEDED, timeout=60,
               what="the resume to succeed")
        assert server.last.body["trigger"] == Trigger.RESUME and server.last.body["session_id"] == run.session_id
    finally:
        server.stop()

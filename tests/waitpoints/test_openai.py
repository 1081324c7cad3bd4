"""A chat model parks through the ``wait`` function tool and, resumed, reads the completion as the next message.

An OpenAI-compatible server written here: asked to deploy, it calls ``wait``;
told the wait's answer, it says so; given the resume's input, it answers. The
resumed conversation carries the parked exchange, then the completion.
"""
from __future__ import annotations

import json
from typing import Any

import pytest
from django.utils import timezone

from runs.models import Run, RunState, Trigger
from runs.services.dispatch import RunPolicy, UnscheduledRequest, run_dispatch_unscheduled
from schedules.models import Agent
from tests.adapters.conftest import AgentServer, Delivery, Reply
from triggers.waits import waitpoint_complete
from waitpoints.models import Waitpoint

pytestmark = pytest.mark.django_db(transaction=True)
ASK = "deploy web once approved"


def chat(content: str | None = None, tool_calls: list[dict[str, Any]] | None = None) -> Reply:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return Reply(body={"id": "c", "object": "chat.completion", "model": "m", "usage": None, "choices": [
        {"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}]})


def model(delivery: Delivery) -> Reply:
    messages = delivery.body["messages"]
    if messages[-1]["role"] == "user" and messages[-1]["content"].startswith('{"ok"'):
        return chat(content="approved: deploying")
    if any(m["role"] == "tool" for m in messages):
        return chat(content="waiting for approval")
    assert "wait" in [t["function"]["name"] for t in delivery.body["tools"]]
    return chat(tool_calls=[{"id": "call_1", "type": "function", "function": {"name": "wait", "arguments": json.dumps(
        {"kind": "token", "timeout_seconds": 600, "reason": "approval"})}}])


def test_a_model_waits_through_the_tool_and_hears_the_completion_after_its_own_words(stack, waiter):
    server = AgentServer(model).start()
    try:
        agent = Agent.objects.create(name="chatty", adapter="openai",
                                     config={"model": "m", "base_url": server.url, "api_key_env": None})
        run = run_dispatch_unscheduled(agent, UnscheduledRequest(
            trigger=Trigger.MANUAL, identity="chat", input=ASK, policy=RunPolicy(max_attempts=1)),
            now=timezone.now())
        assert run is not None
        stack.worker()
        parked = waiter(lambda: Run.objects.filter(id=run.id, state=RunState.WAITING, output__isnull=False)
                        .exclude(output__has_key="waitpoint").first(), timeout=90, what="the model's run to park")
        assert parked.output["content"] == "waiting for approval"  # the model's own last words, kept
        waitpoint = Waitpoint.objects.get(run=run)
        done = waitpoint_complete(waitpoint.id, payload={"approved": True}, by="test", now=timezone.now())
        waiter(lambda: Run.objects.filter(id=done.waitpoint.resume_run_id, state=RunState.SUCCEEDED).exists(),
               timeout=90, what="the resumed conversation to end")
        resumed = server.last.body["messages"]
        turns = [(m["role"], m["content"]) for m in resumed if m["role"] in ("user", "assistant")]
        assert turns[-3:-1] == [("user", ASK), ("assistant", "waiting for approval")]
        assert turns[-1][0] == "user" and json.loads(turns[-1][1])["payload"] == {"approved": True}
        assert Run.objects.get(id=done.waitpoint.resume_run_id).output["content"] == "approved: deploying"
    finally:
        server.stop()

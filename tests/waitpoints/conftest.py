"""Waitpoint tests: a real worker, a live API, and HTTP agents on loopback that park through the ``wait`` tool.

An agent here is a loopback server: on its first delivery it calls the
``wait`` tool over the live API with the run token it was sent (as a real
agent would), answers, and on the resume delivery echoes what it received.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from django.utils import timezone

from runs.models import Run, RunState, Trigger
from runs.services.dispatch import RunPolicy, UnscheduledRequest, run_dispatch_unscheduled
from schedules.models import Agent
from tests.adapters.conftest import AgentServer, Delivery, Reply
from tests.conftest import wait_for
from tests.shells.api.conftest import Caller, api_url, http, make_caller  # noqa: F401  (fixtures)
from waitpoints.models import Waitpoint


class ParkingAgent:
    """Parks its first run with ``before_wait`` then the ``wait`` tool; echoes each resume's input."""

    def __init__(self, base: str, wait: dict[str, Any],
                 before_wait: Callable[[Delivery], None] | None = None) -> None:
        self.api_url, self.wait, self.before_wait = base, wait, before_wait
        self.tool_answers: list[httpx.Response] = []
        self.resumes: list[Delivery] = []
        self.lock = threading.Lock()

    def __call__(self, delivery: Delivery) -> Reply:
        if delivery.body["trigger"] == Trigger.RESUME:
            with self.lock:
                self.resumes.append(delivery)
            return Reply(body={"resumed_with": json.loads(delivery.body["input"])})
        if self.before_wait:
            self.before_wait(delivery)
        answer = tool_call(self.api_url, delivery, "wait", self.wait)
        with self.lock:
            self.tool_answers.append(answer)
        return Reply(body={"waiting": answer.status_code == 200})

    @property
    def parked(self) -> dict[str, Any]:
        """The ``wait`` tool's answer; the run parks before the answer reaches the agent, so waited for."""
        wait_for(lambda: self.tool_answers, timeout=30, what="the wait tool's answer to reach the agent")
        (answer,) = self.tool_answers
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


def tool_call(base: str, delivery: Delivery, name: str, body: dict[str, Any]) -> httpx.Response:
    """What an agent does with the token it was sent: call one of its run's tools."""
    return httpx.post(f"{base}/runs/{delivery.body['run_id']}/tools/{name}", json=body, timeout=30,
                      headers={"Tickwise-Run-Token": delivery.headers["tickwise-run-token"]})


@pytest.fixture
def agent_server() -> Iterator[Callable[[ParkingAgent], AgentServer]]:
    servers: list[AgentServer] = []

    def start(responder: ParkingAgent) -> AgentServer:
        servers.append(AgentServer(responder).start())
        return servers[-1]
    yield start
    for server in servers:
        server.stop()


def http_agent(caller: Caller, server: AgentServer, name: str = "waiter") -> Agent:
    return Agent.objects.create(name=name, adapter="http", workspace=caller.workspace,
                                config={"url": f"{server.url}/run"})


def start_run(agent: Agent, caller: Caller, identity: str = "first", **policy: Any) -> Run:
    request = UnscheduledRequest(trigger=Trigger.MANUAL, identity=identity, input="deploy web, then report",
                                 policy=RunPolicy(max_attempts=1, **policy), started_by_id=caller.user_id)
    run = run_dispatch_unscheduled(agent, request, now=timezone.now())
    assert run is not None
    return run


def parked(run: Run, waiter: Callable[..., object]) -> Waitpoint:
    waiter(lambda: Run.objects.get(id=run.id).state == RunState.WAITING, timeout=60, what=f"run {run.id} to park")
    return Waitpoint.objects.get(run=run)


def resumed(waitpoint: Waitpoint, waiter: Callable[..., object]) -> Run:
    def done() -> Run | None:
        found = Waitpoint.objects.get(id=waitpoint.id)
        if found.resume_run_id is None:
            return None
        run = Run.objects.get(id=found.resume_run_id)
        return run if run.state == RunState.SUCCEEDED else None
    result = waiter(done, timeout=60, what=f"waitpoint {waitpoint.id}'s resume to succeed")
    assert isinstance(result, Run)
    return result

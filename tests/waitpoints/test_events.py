"""Event waits: a parked run resumes on a matching event of its workspace, also one received before it parked.

Events are posted through the live API and routed by the real worker's
``events.route`` task; the router completes the matching event waits.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from itertools import count

import httpx
import pytest

from events.models import InboundEvent, RoutingOutcome
from tests.conftest import wait_for
from tests.shells.api.conftest import Caller
from waitpoints.models import WaitState

from .conftest import ParkingAgent, http_agent, parked, resumed, start_run

pytestmark = pytest.mark.django_db(transaction=True)
DEPLOY_WAIT = {"kind": "event", "event_type": "deploy.*", "match": {"data.service": "web"}, "timeout_seconds": 600}
_ids = count(1)


def post_event(api_url: str, caller: Caller, service: str) -> int:
    """A first-party event through the API, returned once the worker has routed it."""
    answer = httpx.post(f"{api_url}/events", headers=caller.headers, timeout=30, json={
        "type": "deploy.finished", "id": f"deploy-{next(_ids)}", "data": {"service": service}})
    assert answer.status_code == 202, answer.text
    event_id = int(answer.json()["id"])

    def routed() -> bool:
        found = httpx.get(f"{api_url}/events/{event_id}", headers=caller.headers, timeout=30).json()
        return bool(found["outcome"] != RoutingOutcome.PENDING)
    wait_for(routed, timeout=60, what=f"event {event_id} to be routed")
    return event_id


def test_an_event_wait_resumes_on_the_first_matching_event(stack, waiter, api_url, make_caller, agent_server):
    caller = make_caller()
    agent = ParkingAgent(api_url, DEPLOY_WAIT)
    run = start_run(http_agent(caller, agent_server(agent)), caller)
    stack.worker(concurrency=2)
    waitpoint = parked(run, waiter)
    post_event(api_url, caller, "api")  # the wrong service: the run stays parked
    assert waitpoint.__class__.objects.get(id=waitpoint.id).state == WaitState.WAITING
    event_id = post_event(api_url, caller, "web")
    resume = resumed(waitpoint, waiter)
    done = waitpoint.__class__.objects.get(id=waitpoint.id)
    assert done.state == WaitState.COMPLETED and done.completed_by == f"event {event_id}"
    received = json.loads(agent.resumes[0].body["input"])
    assert received["ok"] is True and received["payload"]["data"] == {"service": "web"}
    assert received["payload"]["type"] == "deploy.finished"
    assert resume.session_id == run.session_id and resume.parent_run_id == run.id


def test_an_event_received_after_the_run_started_but_before_it_parked_still_wakes_it(
        stack, waiter, api_url, make_caller, agent_server):
    caller = make_caller()
    early: list[int] = []

    def deploy_finishes_first(_delivery: object) -> None:
        early.append(post_event(api_url, caller, "web"))  # routed while no wait was open yet
    agent = ParkingAgent(api_url, DEPLOY_WAIT, before_wait=deploy_finishes_first)
    run = start_run(http_agent(caller, agent_server(agent)), caller)
    stack.worker(concurrency=2)
    waiter(lambda: agent.tool_answers, timeout=60, what="the agent to call the wait tool")
    assert agent.parked["state"] == WaitState.COMPLETED  # completed at park time, from the ledger
    waitpoint = parked(run, waiter)
    resumed(waitpoint, waiter)
    assert waitpoint.__class__.objects.get(id=waitpoint.id).completed_by == f"event {early[0]}"
    assert InboundEvent.objects.get(id=early[0]).outcome == RoutingOutcome.NO_MATCH  # no subscription took it
    assert json.loads(agent.resumes[0].body["input"])["payload"]["data"] == {"service": "web"}


def test_a_run_of_another_workspace_is_not_woken_by_this_workspaces_event(
        stack, waiter, api_url, make_caller, agent_server):
    caller, other = make_caller(), make_caller(workspace="globex")
    agent = ParkingAgent(api_url, DEPLOY_WAIT)
    run = start_run(http_agent(other, agent_server(agent)), other)
    stack.worker(concurrency=2)
    waitpoint = parked(run, waiter)
    post_event(api_url, caller, "web")
    assert waitpoint.__class__.objects.get(id=waitpoint.id).state == WaitState.WAITING
    not_here: Callable[[], httpx.Response] = lambda: httpx.post(  # noqa: E731
        f"{api_url}/waitpoints/{waitpoint.id}/complete", json={}, headers=caller.headers, timeout=30)
    assert not_here().status_code == 404  # invisible outside its workspace

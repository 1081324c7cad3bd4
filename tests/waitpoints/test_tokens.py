"""Token waits, end to end: an HTTP agent parks through the ``wait`` tool; the API or the signed callback resumes it.

Each resume is a new run (trigger ``resume``) in the parked run's session and
chain, whose input carries the completion; a waitpoint resumes once however
many completions arrive, and a forged callback completes nothing.
"""
from __future__ import annotations

import json
import threading
from urllib.parse import urlsplit

import httpx
import pytest

from runs.models import AgentCall, CallState, Run, RunState, Trigger
from waitpoints.models import WaitState

from .conftest import ParkingAgent, http_agent, parked, resumed, start_run

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN_WAIT = {"kind": "token", "timeout_seconds": 3600, "reason": "a person approves the deploy"}


def _absolute(api_url: str, url: str) -> str:
    """The callback URL on the test's server (absolute only when TICKWISE_PUBLIC_URL is set)."""
    parts = urlsplit(url)
    origin = urlsplit(api_url)
    return f"{origin.scheme}://{origin.netloc}{parts.path}?{parts.query}"


def test_a_token_completed_through_the_api_resumes_the_run_once_in_its_session(
        stack, waiter, api_url, http, make_caller, agent_server):
    caller = make_caller()
    agent = ParkingAgent(api_url, TOKEN_WAIT)
    run = start_run(http_agent(caller, agent_server(agent)), caller)
    stack.worker()
    waitpoint = parked(run, waiter)
    answer = agent.parked
    assert answer["waitpoint"] == str(waitpoint.id) and answer["kind"] == "token"
    assert answer["complete_url"].endswith(f"/api/v1/waitpoints/{waitpoint.id}/complete")
    assert "/callback?sig=" in answer["callback_url"]
    # The agent's answer after its wait is kept on the parked attempt (not a stale write).
    parked_run = waiter(lambda: Run.objects.filter(id=run.id, output={"waiting": True}).first(), timeout=60,
                        what="the parked attempt's answer to be stored")
    assert parked_run.state == RunState.WAITING
    assert parked_run.finished_at is not None and parked_run.lease_expires_at is None
    assert AgentCall.objects.get(run=run).state == CallState.SUCCEEDED  # the attempt answered: not a failure

    listed = http.get("/waitpoints", params={"run": run.id}, headers=caller.headers)
    assert listed.status_code == 200 and [w["id"] for w in listed.json()] == [str(waitpoint.id)]
    assert http.get(f"/waitpoints/{waitpoint.id}", headers=caller.headers).json()["state"] == WaitState.WAITING
    first = http.post(f"/waitpoints/{waitpoint.id}/complete", json={"payload": {"approved": True}},
                      headers=caller.headers)
    assert first.status_code == 200, first.text
    assert first.json()["completed"] is True and first.json()["state"] == WaitState.COMPLETED
    resume = resumed(waitpoint, waiter)
    assert resume.trigger == Trigger.RESUME and resume.session_id == run.session_id
    assert resume.parent_run_id == run.id and resume.chain_id == run.chain_id and resume.agent_id == run.agent_id
    (delivery,) = agent.resumes
    assert json.loads(delivery.body["input"]) == {"ok": True, "payload": {"approved": True},
                                                  "waitpoint": str(waitpoint.id), "kind": "token"}
    assert delivery.body["session_id"] == run.session_id

    again = http.post(f"/waitpoints/{waitpoint.id}/complete", json={"payload": {"approved": False}},
                      headers=caller.headers)
    assert again.status_code == 200 and again.json()["completed"] is False  # a no-op with the original outcome
    assert again.json()["payload"] == {"approved": True} and again.json()["resume_run_id"] == resume.id
    assert Run.objects.filter(trigger=Trigger.RESUME).count() == 1
    assert Run.objects.get(id=run.id).state == RunState.WAITING  # the parked attempt keeps its record


def test_the_signed_callback_completes_without_a_key_and_a_forged_one_completes_nothing(
        stack, waiter, api_url, http, make_caller, agent_server):
    caller = make_caller()
    agent = ParkingAgent(api_url, TOKEN_WAIT)
    run = start_run(http_agent(caller, agent_server(agent)), caller)
    stack.worker()
    waitpoint = parked(run, waiter)
    callback = _absolute(api_url, agent.parked["callback_url"])
    signature = callback.rsplit("sig=", 1)[1]
    forged = callback.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    for url in (forged, callback.split("?")[0] + "?sig=", callback.replace(str(waitpoint.id), str(run.id))):
        refused = httpx.post(url, json={"approved": True})
        assert refused.status_code in (403, 404, 422), refused.text
    refused = httpx.post(forged, json={"approved": True})
    assert refused.status_code == 403 and refused.json()["type"].endswith("/signature-invalid")
    assert Run.objects.filter(trigger=Trigger.RESUME).count() == 0
    assert waitpoint.__class__.objects.get(id=waitpoint.id).state == WaitState.WAITING

    done = httpx.post(callback, json={"build": 42})
    assert done.status_code == 200, done.text
    assert done.json()["completed"] is True and done.json()["completed_by"] == "callback"
    resumed(waitpoint, waiter)
    assert json.loads(agent.resumes[0].body["input"])["payload"] == {"build": 42}


def test_two_concurrent_completions_make_one_resume(stack, waiter, api_url, make_caller, agent_server):
    caller = make_caller()
    agent = ParkingAgent(api_url, TOKEN_WAIT)
    run = start_run(http_agent(caller, agent_server(agent)), caller)
    stack.worker()
    waitpoint = parked(run, waiter)
    callback = _absolute(api_url, agent.parked["callback_url"])
    start = threading.Barrier(4)
    answers: list[httpx.Response] = []

    def complete(n: int) -> None:
        start.wait()
        if n % 2:
            answers.append(httpx.post(callback, json={"by": n}, timeout=30))
        else:
            answers.append(httpx.post(f"{api_url}/waitpoints/{waitpoint.id}/complete", json={"payload": {"by": n}},
                                      headers=caller.headers, timeout=30))
    threads = [threading.Thread(target=complete, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert sum(a.json()["completed"] for a in answers) == 1
    assert len({a.json()["resume_run_id"] for a in answers}) == 1
    resumed(waitpoint, waiter)
    assert Run.objects.filter(trigger=Trigger.RESUME).count() == 1 and len(agent.resumes) == 1

"""Long work detached from a session that reports back to it, end to end.

A chat agent and a builder agent are HTTP servers on loopback, runs go
through a real worker, and everything a client does goes through the live
API: a background run started with ``reply_to_run`` comes back to the chat's
session as a resume carrying its outcome; a chat run that waits on the
background run with the ``wait`` tool (kind ``run``) parks and resumes when
the build ends.
"""
from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from runs.models import Run, RunState, Trigger
from tests.adapters.conftest import Delivery, Reply
from tests.shells.api.conftest import Caller
from waitpoints.models import WaitKind, Waitpoint, WaitState

from .conftest import http_agent, parked, resumed, start_run, tool_call

pytestmark = pytest.mark.django_db(transaction=True)


class Builder:
    """Answers each build once ``release`` is set: the long work."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def __call__(self, delivery: Delivery) -> Reply:
        self.release.wait(60)
        return Reply(body={"artifact": f"built from {delivery.body['input']!r}"})


class Chat:
    """Answers its first turn with ``first_turn``; records each resume it hears."""

    def __init__(self, first_turn: Any = None) -> None:
        self.first_turn = first_turn or (lambda delivery: Reply(body={"text": "building it, I will tell you"}))
        self.resumes: list[dict[str, Any]] = []

    def __call__(self, delivery: Delivery) -> Reply:
        if delivery.body["trigger"] == Trigger.RESUME:
            self.resumes.append(json.loads(delivery.body["input"]))
            return Reply(body={"text": "the build is done"})
        return self.first_turn(delivery)


def start_build(api_url: str, caller: Caller, builder_id: int, **body: Any) -> httpx.Response:
    return httpx.post(f"{api_url}/agents/{builder_id}/runs", headers=caller.headers, timeout=30,
                      json={"input": "release 42", **body})


def test_a_background_run_reports_back_to_the_session_that_started_it(
        stack, waiter, api_url, make_caller, agent_server):
    caller = make_caller()
    chat, builder = Chat(), Builder()
    chat_run = start_run(http_agent(caller, agent_server(chat), "chat"), caller)
    builder_agent = http_agent(caller, agent_server(builder), "builder")
    stack.worker(concurrency=2)
    waiter(lambda: Run.objects.get(id=chat_run.id).state == RunState.SUCCEEDED, timeout=60, what="the chat turn")

    answer = start_build(api_url, caller, builder_agent.pk, reply_to_run=chat_run.pk)
    assert answer.status_code == 202, answer.text
    build = Run.objects.get(id=answer.json()["id"])
    assert (build.parent_run_id, build.chain_id) == (chat_run.pk, chat_run.chain_id)
    reply = Waitpoint.objects.get(watched_run=build)
    assert (reply.kind, reply.parks_run, reply.state) == (WaitKind.RUN, False, WaitState.WAITING)
    builder.release.set()

    resume = resumed(reply, waiter)
    assert resume.session_id == chat_run.session_id and resume.agent_id == chat_run.agent_id
    assert resume.parent_run_id == build.pk
    (heard,) = chat.resumes
    assert heard["ok"] is True and heard["payload"]["state"] == "succeeded"
    assert heard["payload"]["output"] == {"artifact": "built from 'release 42'"}
    assert Run.objects.get(id=chat_run.id).state == RunState.SUCCEEDED  # the chat turn never parked

    chain = httpx.get(f"{api_url}/runs/{resume.pk}/chain", headers=caller.headers, timeout=30).json()
    parents = {run["id"]: run["parent_run"] for run in chain["runs"]}
    assert parents == {chat_run.pk: None, build.pk: chat_run.pk, resume.pk: build.pk}


def test_a_reply_to_an_unknown_run_is_refused_and_starts_nothing(api_url, make_caller, agent_server):
    caller = make_caller()
    builder_agent = http_agent(caller, agent_server(Builder()), "builder")
    answer = start_build(api_url, caller, builder_agent.pk, reply_to_run=999_999)
    assert answer.status_code == 404 and "999999" in answer.json()["detail"]
    too_long = start_build(api_url, caller, builder_agent.pk, reply_to_run=1, reply_timeout_seconds=31 * 86400)
    assert too_long.status_code == 422 and "reply_timeout_seconds" in too_long.text
    assert not Run.objects.filter(agent=builder_agent).exists()


def test_a_chat_run_waits_on_its_background_build_and_resumes_when_it_ends(
        stack, waiter, api_url, make_caller, agent_server):
    caller = make_caller()
    builder = Builder()
    builder_agent = http_agent(caller, agent_server(builder), "builder")
    tool_answers: list[httpx.Response] = []

    def start_and_wait(delivery: Delivery) -> Reply:
        build = start_build(api_url, caller, builder_agent.pk)
        assert build.status_code == 202, build.text
        tool_answers.append(tool_call(api_url, delivery, "wait", {
            "kind": "run", "run_id": build.json()["id"], "timeout_seconds": 600, "reason": "the build"}))
        return Reply(body={"text": "waiting for the build"})
    chat = Chat(start_and_wait)
    chat_run = start_run(http_agent(caller, agent_server(chat), "chat"), caller)
    stack.worker(concurrency=2)

    waitpoint = parked(chat_run, waiter)
    (answer,) = tool_answers
    assert answer.status_code == 200 and answer.json()["kind"] == "run", answer.text
    assert waitpoint.state == WaitState.WAITING and waitpoint.watched_run_id is not None
    builder.release.set()

    resume = resumed(waitpoint, waiter)
    assert resume.parent_run_id == chat_run.pk and resume.session_id == chat_run.session_id
    (heard,) = chat.resumes
    assert heard["payload"]["run"] == waitpoint.watched_run_id and heard["payload"]["state"] == "succeeded"
    assert Waitpoint.objects.get(id=waitpoint.id).completed_by == f"run {waitpoint.watched_run_id}"


def test_an_agent_detaches_work_with_the_background_tool_and_hears_the_result(
        stack, waiter, api_url, make_caller, agent_server):
    caller = make_caller()
    tool_answers: list[httpx.Response] = []

    def turn(delivery: Delivery) -> Reply:
        if delivery.body["input"] == "build release 42":  # the detached run, in its own session
            return Reply(body={"artifact": "web-42.tar"})
        body = {"prompt": "build release 42", "timeout_seconds": 600, "reason": "the build is slow"}
        tool_answers.extend(tool_call(api_url, delivery, "background", body) for _ in range(2))  # one retried
        return Reply(body={"text": "building it in the background"})
    chat = Chat(turn)
    chat_run = start_run(http_agent(caller, agent_server(chat), "assistant"), caller)
    stack.worker(concurrency=2)

    waiter(lambda: len(tool_answers) == 2, timeout=60, what="the background tool's answers")
    first, retried = (answer.json() for answer in tool_answers)
    assert first["created"] is True and retried["created"] is False and retried["run"] == first["run"]
    reply = Waitpoint.objects.get(id=first["reply_waitpoint"])
    resume = resumed(reply, waiter)
    assert resume.session_id == chat_run.session_id and resume.parent_run_id == first["run"]
    (heard,) = chat.resumes
    assert heard["ok"] is True and heard["payload"]["output"] == {"artifact": "web-42.tar"}
    assert Run.objects.filter(agent=chat_run.agent, input="build release 42").count() == 1

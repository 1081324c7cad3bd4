"""Wakeups end to end: real agents on loopback ask for them, the beat fires them, a worker runs them.

One agent asks through the tools API with its run token (twice: a retried
call), another through a directive in its answer; an OpenAI-compatible server
gets the schedule tool, calls it, and reads the answer (or the refusal) back;
a watch schedule linked to a background run stops when that run ends.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from django.utils import timezone

from runs.models import Run, RunState, Trigger
from schedules.models import Agent, Schedule
from schedules.services import schedule_save
from tests.shells.api.conftest import start_api
from triggers.background import background_run_start
from workspaces.models import AuditEntry, Workspace, default_workspace

pytestmark = pytest.mark.django_db(transaction=True)

WAKEUP = {"in_seconds": 2, "payload": {"type": "task", "prompt": "check the deploy again"},
          "reason": "the deploy takes a few seconds"}


class Server:
    """A loopback HTTP server whose answer to each POST is ``answer(path, headers, body)``."""

    def __init__(self, answer: Callable[[str, dict[str, str], Any], Any]) -> None:
        self.seen: list[tuple[str, dict[str, str], Any]] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.seen.append((self.path, headers, body))
                payload = json.dumps(answer(self.path, headers, body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(answer: Callable[[str, dict[str, str], Any], Any]) -> Server:
        started.append(Server(answer))
        return started[-1]
    yield start
    for server in started:
        server.stop()


def asks_through_the_api(path: str, headers: dict[str, str], body: Any) -> Any:
    """First run: create a wakeup through the tools API, twice (the second a retried call)."""
    if body["trigger"] == Trigger.WAKEUP:
        return {"checked": True}
    url = f"{headers['tickwise-tools-url']}/schedule"
    answers = [httpx.post(url, json={"action": "create", **WAKEUP}, timeout=30,
                          headers={"Tickwise-Run-Token": headers["tickwise-run-token"]}).json() for _ in range(2)]
    return {"tool_answers": answers}


def asks_by_directive(path: str, headers: dict[str, str], body: Any) -> Any:
    if body["trigger"] == Trigger.WAKEUP:
        return {"checked": True}
    return {"text": "deploying", "tickwise": {"wakeup": WAKEUP}}


def test_an_agent_wakes_itself_once_in_its_session_with_its_chain(stack, waiter, servers):
    Workspace.objects.filter(pk=default_workspace()).update(agent_min_delay_seconds=1)
    api = start_api(stack)
    public = {"TICKWISE_PUBLIC_URL": api.removesuffix("/api/v1")}
    by_api = Agent.objects.create(name="by-api", adapter="http",
                                  config={"url": f"{servers(asks_through_the_api).url}/run"})
    by_directive = Agent.objects.create(name="by-directive", adapter="http",
                                        config={"url": f"{servers(asks_by_directive).url}/run"})
    stack.worker(concurrency=2, extra_env=public)
    stack.beat(extra_env=public)
    now = timezone.now()
    firsts = [background_run_start(agent, input="deploy", now=now) for agent in (by_api, by_directive)]
    for agent, first in zip((by_api, by_directive), firsts):
        wakeup = waiter(lambda a=agent: Run.objects.filter(agent=a, trigger=Trigger.WAKEUP,
                                                          state=RunState.SUCCEEDED).first(),
                        timeout=90, what=f"{agent.name}'s wakeup run")
        first.refresh_from_db()
        assert first.state == RunState.SUCCEEDED
        assert (wakeup.session_id, wakeup.chain_id, wakeup.parent_run_id, wakeup.wakeup_count) == (
            first.session_id, first.chain_id, first.pk, 1)
        assert wakeup.input == "check the deploy again"
    time.sleep(3)  # a second wakeup, were there one, would be due by now
    for agent in (by_api, by_directive):
        assert Run.objects.filter(agent=agent, trigger=Trigger.WAKEUP).count() == 1
        assert Schedule.objects.filter(agent=agent).count() == 1
    answers = Run.objects.get(pk=firsts[0].pk).output["tool_answers"]
    assert [a["created"] for a in answers] == [True, False]
    assert answers[0]["schedule"]["id"] == answers[1]["schedule"]["id"]
    directive_output = Run.objects.get(pk=firsts[1].pk).output
    assert directive_output["tickwise_results"][0]["ok"] is True


def test_a_scheduled_run_cannot_make_a_recurring_schedule_by_directive(stack, waiter, servers):
    def recurring(path: str, headers: dict[str, str], body: Any) -> Any:
        return {"tickwise": {"schedules": [{"action": "create", "every_seconds": 3600, "reason": "hourly",
                                            "payload": {"type": "task", "prompt": "again"}}]}}
    agent = Agent.objects.create(name="eager", adapter="http", config={"url": f"{servers(recurring).url}/run"})
    schedule = schedule_save(Schedule(agent=agent, name="soon", kind="once",
                                      run_at=timezone.now() + timedelta(seconds=1)), now=timezone.now())
    stack.worker()
    stack.beat()
    run = waiter(lambda: Run.objects.filter(schedule=schedule, state=RunState.SUCCEEDED).first(), timeout=90,
                 what="the scheduled run")
    result = run.output["tickwise_results"][0]
    assert result["ok"] is False and "one-shot" in result["message"]
    assert Schedule.objects.filter(agent=agent).count() == 1


def chat(content: str | None = None, tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"id": "c", "object": "chat.completion", "model": "m", "usage": None,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}]}


def schedules_then_answers(path: str, headers: dict[str, str], body: Any) -> Any:
    """First request: call the schedule tool; once its answer is in the conversation: a final message."""
    answered = [m for m in body["messages"] if m["role"] == "tool"]
    if answered:
        return chat(content=f"done: {answered[-1]['content']}")
    assert "schedule" in [t["function"]["name"] for t in body["tools"]]
    call = {"id": "call_1", "type": "function", "function": {"name": "schedule", "arguments": json.dumps(
        {"action": "create", "in_seconds": 600, "reason": "remind the user",
         "payload": {"type": "message", "text": "stand-up in 10 minutes"}})}}
    return chat(tool_calls=[call])


def test_an_openai_model_calls_the_schedule_tool_and_reads_the_answer(stack, waiter, servers):
    server = servers(schedules_then_answers)
    agent = Agent.objects.create(name="chatty", adapter="openai",
                                 config={"model": "m", "base_url": server.url, "api_key_env": None})
    stack.worker()
    first = background_run_start(agent, input="remind me of the stand-up in 10 minutes", now=timezone.now())
    waiter(lambda: Run.objects.filter(pk=first.pk, state=RunState.SUCCEEDED).exists(), timeout=90,
           what="the conversation to end")
    made = Schedule.objects.get(agent=agent)
    assert (made.payload_type, made.input_template, made.origin_run_id) == ("message", "stand-up in 10 minutes",
                                                                            first.pk)
    output = Run.objects.get(pk=first.pk).output
    assert output["tool_rounds"] == 1 and output["content"].startswith("done: ")
    assert json.loads(output["tool_calls"][0]["result"])["created"] is True
    # Over the session's quota: the refusal is the tool's answer, the run still ends well.
    Workspace.objects.filter(pk=agent.workspace_id).update(agent_max_per_session=1)
    second = background_run_start(agent, input="and again", now=timezone.now(), session_id=first.session_id)
    waiter(lambda: Run.objects.filter(pk=second.pk, state=RunState.SUCCEEDED).exists(), timeout=90,
           what="the refused conversation to end")
    refusal = json.loads(server.seen[-1][2]["messages"][-1]["content"])
    assert refusal["ok"] is False and refusal["error"] == "quota-exceeded" and "session" in refusal["message"]
    assert Schedule.objects.filter(agent=agent).count() == 1


def test_a_watch_schedule_stops_when_its_background_run_ends(stack, waiter, servers):
    def slow(path: str, headers: dict[str, str], body: Any) -> Any:
        holder.release.wait(60)
        return {"done": True}
    holder = servers(slow)
    builder = Agent.objects.create(name="builder", adapter="http", config={"url": f"{holder.url}/run"})
    watcher = Agent.objects.create(name="watcher", adapter="echo")
    stack.worker(concurrency=2)
    stack.beat()
    build = background_run_start(builder, input="build", now=timezone.now())
    watch = schedule_save(Schedule(agent=watcher, name="watch-build", kind="interval", interval_seconds=1,
                                   process_handle=f"run:{build.pk}", reason="watch the build"), now=timezone.now())
    waiter(lambda: Run.objects.filter(schedule=watch).count() >= 2, timeout=60, what="the watch to fire")
    holder.release.set()
    waiter(lambda: Run.objects.filter(pk=build.pk, state=RunState.SUCCEEDED).exists(), timeout=60,
           what="the build to end")
    watch.refresh_from_db()
    assert watch.deleted_at is not None
    entry = AuditEntry.objects.get(object_type="schedule", object_id=watch.pk, action="delete")
    assert f"process run:{build.pk}" in entry.detail
    fired = Run.objects.filter(schedule=watch).count()
    time.sleep(3)
    assert Run.objects.filter(schedule=watch).count() == fired


def test_a_message_payload_is_delivered_with_no_model_call(stack, waiter, servers):
    model = servers(schedules_then_answers)
    agent = Agent.objects.create(name="reminder", adapter="openai",
                                 config={"model": "m", "base_url": model.url, "api_key_env": None})
    reminder = schedule_save(Schedule(agent=agent, name="wakeup-standup", kind="once", payload_type="message",
                                      input_template="stand-up in 10 minutes",
                                      run_at=timezone.now() + timedelta(seconds=1)), now=timezone.now())
    stack.worker()
    stack.beat()
    run = waiter(lambda: Run.objects.filter(schedule=reminder, state=RunState.SUCCEEDED).first(), timeout=90,
                 what="the reminder to be delivered")
    assert run.output == {"message": "stand-up in 10 minutes", "channel": "log"}
    assert model.seen == []  # no LLM call

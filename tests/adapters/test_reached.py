"""Whether a failed delivery may have reached the agent, and what the run does about it.

A transient failure is retried, unless the request went out whole and the
agent does not dedupe by idempotency key (``message``, ``openai``): then the
run ends ``unknown`` rather than risk a second effect. Real loopback servers.
"""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters import AdapterError, adapter_for
from runs.models import AgentCall, ErrorCategory, Run, RunState, Trigger
from runs.services.dispatch import DispatchRequest, run_dispatch
from runs.services.execute import run_execute
from schedules.models import Agent, Schedule

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def failure(request) -> AdapterError:
    with pytest.raises(AdapterError) as caught:
        adapter_for("http").call(request)
    return caught.value


@pytest.mark.parametrize(("reply", "reached"), [
    ({"status": 500}, True),
    ({"status": 502}, True),
    ({"status": 504}, True),
    ({"status": 503}, False),  # the agent says it did not take the request
    ({"status": 429}, False),
    ({"status": 200, "drop": True}, True),  # read the whole request, then hung up
    ({"status": 200, "body": {"late": True}, "delay": 5}, True),  # the answer never came in time
])
def test_a_transient_failure_says_whether_the_request_reached_the_agent(agent_server, make_request, reply,
                                                                        reached):
    agent_server.reply(**reply)

    error = failure(make_request({"url": agent_server.url, "timeout": 0.3}))

    assert (error.transient, error.reached) == (True, reached)
    assert len(agent_server.deliveries) == 1


def test_a_refused_connection_never_reached_the_agent(closed_port_url, make_request):
    error = failure(make_request({"url": closed_port_url}))

    assert (error.transient, error.reached) == (True, False)


@pytest.mark.parametrize("status", [401, 404, 422])
def test_a_refusal_reached_nothing_that_acted(agent_server, make_request, status):
    agent_server.reply(status, {"error": "no"})

    assert failure(make_request({"url": agent_server.url})).reached is False


def run_against(adapter: str, url: str) -> Run:
    agent = Agent.objects.create(name=f"{adapter}-agent", adapter=adapter, config={"url": url, "timeout": 0.3})
    schedule = Schedule.objects.create(agent=agent, name="hourly", cron="0 * * * *", max_attempts=3,
                                       retry_backoff_seconds=10)
    run = run_dispatch(schedule, DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=NOW), now=NOW, publish=False)
    run_execute(run.id, owner="test", now=NOW)
    return Run.objects.get(id=run.id)


@pytest.mark.parametrize(("reply", "state"), [
    ({"status": 502}, RunState.UNKNOWN),
    ({"status": 200, "drop": True}, RunState.UNKNOWN),
    ({"status": 503}, RunState.PENDING),  # retried: the agent did not take it
    ({"status": 429}, RunState.PENDING),
])
def test_a_webhook_that_may_have_acted_is_not_retried(db, agent_server, reply, state):
    agent_server.reply(**reply)

    run = run_against("message", agent_server.url)

    assert run.state == state
    assert run.error_category in (ErrorCategory.AGENT_ERROR, ErrorCategory.CAPACITY)
    if state == RunState.PENDING:
        assert run.not_before is not None and run.attempt == 1
    else:
        assert run.finished_at is not None
    assert AgentCall.objects.get(run=run).state != "intent"  # the call's outcome is recorded either way


def test_a_refused_webhook_is_retried(db, closed_port_url):
    run = run_against("message", closed_port_url)

    assert (run.state, run.attempt) == (RunState.PENDING, 1)


def test_an_agent_that_dedupes_by_key_is_retried_after_a_502(db, agent_server):
    agent_server.reply(502)

    run = run_against("http", agent_server.url)

    assert (run.state, run.attempt) == (RunState.PENDING, 1)  # the retry carries the same key

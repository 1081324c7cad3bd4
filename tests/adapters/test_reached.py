"""Whether a failed delivery may have reached the agent, and what the run does about it.

A transient failure is retried, unless the request went out whole and the
agent does not dedupe by idempotency key (``message``, ``openai``): then the
run ends ``unknown`` rather than risk a second effect. Real loopback servers.
"""
from __future__ import annotations

import ssl
from datetime import UTC, datetime

import httpx
import pytest

from adapters import AdapterError, adapter_for, transport
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
    ({"status": 408}, False),  # the server did not receive the whole request
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


# Larger than the loopback socket buffers, so the write is still under way
# when the server hangs up or stops reading.
LARGE_INPUT = "x" * (32 * 1024 * 1024)


@pytest.mark.parametrize(("cut", "category"), [("close", "agent_error"), ("stall", "timeout")])
def test_a_request_cut_off_before_its_body_was_sent_never_reached_the_agent(agent_server, make_request, cut,
                                                                            category):
    # httpx reports the hang-up as RemoteProtocolError, the same error as an
    # answer lost after a whole request; only the request's progress tells them apart.
    agent_server.reply(before_body=cut)

    error = failure(make_request({"url": agent_server.url, "timeout": 0.5}, input=LARGE_INPUT))

    assert (error.transient, error.reached, error.category) == (True, False, category)
    assert agent_server.deliveries == []


def test_no_connection_within_the_timeout_never_reached_the_agent(unanswered_url, make_request):
    error = failure(make_request({"url": unanswered_url, "timeout": 0.3}))

    assert (error.transient, error.reached, error.category) == (True, False, "timeout")
    assert "could not connect" in str(error)


def _chained(error: Exception, cause: Exception) -> Exception:
    try:
        try:
            raise cause
        except type(cause) as inner:
            raise error from inner
    except type(error) as outer:
        return outer


@pytest.mark.parametrize(("error", "sent", "expected"), [
    (httpx.ConnectError("[Errno 111] Connection refused"), False, (True, False, "agent_error")),
    (_chained(httpx.ConnectError("verify failed"), ssl.SSLCertVerificationError("verify failed")), False,
     (False, False, "agent_error")),
    (httpx.ConnectTimeout("timed out"), False, (True, False, "timeout")),
    (httpx.PoolTimeout("timed out"), False, (True, False, "timeout")),
    (httpx.WriteTimeout("timed out"), False, (True, False, "timeout")),
    (httpx.WriteError("[Errno 32] Broken pipe"), False, (True, False, "agent_error")),
    (httpx.ReadTimeout("timed out"), True, (True, True, "timeout")),
    (httpx.ReadTimeout("timed out"), False, (True, False, "timeout")),
    (httpx.RemoteProtocolError("Server disconnected"), True, (True, True, "agent_error")),
    (httpx.RemoteProtocolError("Server disconnected"), False, (True, False, "agent_error")),
    (httpx.ReadError("[Errno 104] Connection reset by peer"), True, (True, True, "agent_error")),
    (httpx.ReadError("[Errno 104] Connection reset by peer"), False, (True, False, "agent_error")),
    (httpx.DecodingError("invalid gzip"), True, (False, True, "agent_error")),
    (httpx.LocalProtocolError("Illegal header value b's3cret'"), False, (False, None, "config")),
])
def test_each_httpx_error_says_whether_the_request_reached_the_agent(error, sent, expected):
    """``sent``: the whole request was handed to the socket before ``error``."""
    mapped = transport.transport_error(error, host="agent.test", timeout=5, sent=sent)

    assert (mapped.transient, mapped.reached, mapped.category) == expected
    assert "s3cret" not in str(mapped)


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

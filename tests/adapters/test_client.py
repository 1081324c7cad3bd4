"""The pooled HTTP client: one per process, connections reused across runs, never across a fork.

Each test counts the TCP connections a real loopback server accepted.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.utils import timezone

from adapters import AdapterError, adapter_for
from adapters.client import KEEPALIVE_ENV, http_client_close, request_timeout
from runs.models import Run, RunState
from runs.services.manual import run_now as schedule_run_now
from schedules.models import Agent, Schedule
from schedules.services import schedule_save
from tests.adapters.conftest import AgentServer, Delivery, Reply, chat_completion


@pytest.fixture
def fresh_client() -> Iterator[None]:
    """Start with no pooled connection, and leave none behind."""
    http_client_close()
    yield
    http_client_close()


def call(make_request, url: str, kind: str = "http", **config):
    return adapter_for(kind).call(make_request({"url": url, **config}))


def test_runs_in_one_process_share_one_connection(fresh_client, agent_server, make_request):
    for attempt in (1, 2, 3, 4, 5):
        adapter_for("http").call(make_request({"url": agent_server.url + "/runs"}, attempt=attempt))

    assert [d.body["attempt"] for d in agent_server.deliveries] == [1, 2, 3, 4, 5]
    assert agent_server.connections == 1


def either_agent(delivery: Delivery) -> Reply:
    return chat_completion(delivery) if delivery.path.endswith("/chat/completions") else Reply(body={"ok": True})


def test_every_http_adapter_shares_the_pool(fresh_client, make_request, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server = AgentServer(either_agent).start()
    try:
        call(make_request, server.url + "/run")
        call(make_request, server.url + "/hook", kind="message")
        adapter_for("openai").call(make_request({"base_url": server.url + "/v1", "model": "gpt-test"}))
        call(make_request, server.url + "/run")
    finally:
        server.stop()

    assert [d.path for d in server.deliveries] == ["/run", "/hook", "/v1/chat/completions", "/run"]
    assert server.connections == 1


@pytest.mark.parametrize("status", [500, 503, 429, 404])
def test_an_error_reply_read_whole_keeps_the_connection(fresh_client, agent_server, make_request, status):
    call(make_request, agent_server.url)
    agent_server.reply(status, {"error": "no"})
    with pytest.raises(AdapterError):
        call(make_request, agent_server.url)
    call(make_request, agent_server.url)

    assert len(agent_server.deliveries) == 3
    assert agent_server.connections == 1


@pytest.mark.parametrize("failure", [
    {"drop": True},  # the server hung up without answering
    {"delay": 5},  # no answer within the timeout
    {"body": {"padding": "x" * 40}, "trickle": 0.05},  # the body outlasted the timeout
])
def test_a_connection_left_mid_answer_is_not_reused(fresh_client, agent_server, make_request, failure):
    call(make_request, agent_server.url)
    agent_server.reply(**{"status": 200, **failure})
    with pytest.raises(AdapterError):
        call(make_request, agent_server.url, timeout=0.3)
    call(make_request, agent_server.url)

    assert len(agent_server.deliveries) == 3
    assert agent_server.connections == 2


def test_a_tls_agent_trusted_through_ssl_cert_file_is_reached_on_one_connection(fresh_client, self_signed_server,
                                                                                  make_request, monkeypatch):
    # Read by OpenSSL when the client loads the system's trust store.
    monkeypatch.setenv("SSL_CERT_FILE", str(self_signed_server.certificate))

    for _ in range(3):
        call(make_request, self_signed_server.url + "/runs")

    assert len(self_signed_server.deliveries) == 3
    assert self_signed_server.connections == 1  # one TLS handshake for the three


def test_a_forked_process_opens_its_own_connection(fresh_client, agent_server, make_request):
    # A Celery prefork child starts as a copy of its parent, pool included.
    call(make_request, agent_server.url)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            call(make_request, agent_server.url)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    call(make_request, agent_server.url)

    assert os.waitstatus_to_exitcode(status) == 0
    assert len(agent_server.deliveries) == 3
    assert agent_server.connections == 2  # the parent's, used twice, and the child's own


def test_idle_connections_are_kept_only_as_long_as_configured(fresh_client, agent_server, make_request,
                                                             monkeypatch):
    monkeypatch.setenv(KEEPALIVE_ENV, "0")

    for _ in range(3):
        call(make_request, agent_server.url)

    assert agent_server.connections == 3


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_a_bad_keepalive_setting_is_a_config_error_naming_it(fresh_client, agent_server, make_request,
                                                            monkeypatch, value):
    monkeypatch.setenv(KEEPALIVE_ENV, value)

    with pytest.raises(AdapterError) as caught:
        call(make_request, agent_server.url)

    assert (caught.value.transient, caught.value.category) == (False, "config")
    assert KEEPALIVE_ENV in str(caught.value) and repr(value) in str(caught.value)
    assert agent_server.deliveries == []


@pytest.mark.parametrize(("seconds", "expected"), [
    (30, {"connect": 10.0, "read": 30, "write": 30, "pool": 5.0}),
    (0.3, {"connect": 0.3, "read": 0.3, "write": 0.3, "pool": 0.3}),
])
def test_every_request_carries_explicit_timeouts(seconds, expected):
    assert request_timeout(seconds).as_dict() == expected


@pytest.mark.django_db(transaction=True)
def test_a_worker_delivers_runs_to_one_agent_on_one_connection(stack, waiter, agent_server):
    agent = Agent.objects.create(name="pooled", adapter="http", config={"url": f"{agent_server.url}/run"})
    schedule = schedule_save(Schedule(agent=agent, name="yearly", cron="0 0 1 1 *", timeout_seconds=30,
                                      overlap_policy="allow", max_concurrent=10), now=timezone.now())
    # Kept idle longer than the default: a busy test machine may pause between
    # two tasks, and this test is about reuse, not expiry.
    stack.worker(extra_env={KEEPALIVE_ENV: "60"})

    runs = [schedule_run_now(schedule, now=timezone.now()) for _ in range(4)]
    waiter(lambda: Run.objects.filter(pk__in=[r.pk for r in runs], state=RunState.SUCCEEDED).count() == 4,
           timeout=60, what="four runs to succeed")

    assert len(agent_server.deliveries) == 4
    assert agent_server.connections == 1

"""The ``http`` adapter against a real loopback agent server."""
from __future__ import annotations

from datetime import UTC

import pytest

from adapters import AdapterError, adapter_for, transport
from adapters.http import HttpAdapter

KEY = "sched-7-v3-2026-03-08T07:30:00Z"


def call(request):
    return adapter_for("http").call(request)


def failure(request) -> AdapterError:
    with pytest.raises(AdapterError) as caught:
        call(request)
    return caught.value


def test_posts_the_run_and_returns_the_json_reply(agent_server, make_request):
    agent_server.reply(200, {"summary": "done", "items": [1, 2]})

    output = call(make_request({"url": agent_server.url + "/runs"}, attempt=2))

    assert output == {"summary": "done", "items": [1, 2]}
    delivery = agent_server.last
    assert delivery.path == "/runs"
    assert delivery.body == {
        "run_id": 42, "input": "Summarise 2026-03-08", "session_id": "sess-1",
        "tick_at": "2026-03-08T07:30:00Z", "trigger": "schedule", "attempt": 2, "idempotency_key": KEY,
    }
    assert delivery.headers["idempotency-key"] == KEY
    assert delivery.headers["content-type"] == "application/json"
    assert "authorization" not in delivery.headers and "tickwise-workspace" not in delivery.headers
    assert agent_server.per_key[KEY] == 1


def test_every_attempt_carries_the_same_key(agent_server, make_request):
    for attempt in (1, 2, 3):
        call(make_request({"url": agent_server.url}, attempt=attempt))

    assert agent_server.per_key == {KEY: 3}


def test_sends_configured_headers_and_the_bearer_token_from_the_environment(agent_server, make_request,
                                                                            monkeypatch):
    monkeypatch.setenv("REPORTER_TOKEN", "s3cret")
    config = {"url": agent_server.url, "headers": {"X-Team": "ops"}, "token_env": "REPORTER_TOKEN"}

    call(make_request(config))

    assert agent_server.last.headers["x-team"] == "ops"
    assert agent_server.last.headers["authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(config)


def test_a_missing_token_variable_is_a_config_error_naming_it(agent_server, make_request, monkeypatch):
    monkeypatch.delenv("REPORTER_TOKEN", raising=False)

    error = failure(make_request({"url": agent_server.url, "token_env": "REPORTER_TOKEN"}))

    assert (error.transient, error.category) == (False, "config")
    assert "REPORTER_TOKEN" in str(error)
    assert agent_server.deliveries == []


@pytest.mark.parametrize("token", ["s3cret\r\nX-Injected: 1", "s3cret\n", "s3cret\u20ac"])
def test_a_token_that_cannot_be_a_header_is_a_config_error_that_does_not_quote_it(agent_server, make_request,
                                                                                  monkeypatch, token):
    monkeypatch.setenv("REPORTER_TOKEN", token)

    error = failure(make_request({"url": agent_server.url, "token_env": "REPORTER_TOKEN"}))

    assert (error.transient, error.category) == (False, "config")
    assert "s3cret" not in str(error)
    assert agent_server.deliveries == []
    assert agent_server.connections == 0  # refused before connecting


def test_a_latin1_header_value_is_sent_as_it_is(agent_server, make_request):
    call(make_request({"url": agent_server.url, "headers": {"X-Team": "\u00c9quipe"}}))

    assert agent_server.last.headers["x-team"] == "\u00c9quipe"


def test_the_url_may_come_from_the_environment(agent_server, make_request, monkeypatch):
    monkeypatch.setenv("REPORTER_URL", agent_server.url + "/hook")

    call(make_request({"url_env": "REPORTER_URL"}))

    assert agent_server.last.path == "/hook"


@pytest.mark.parametrize(("raw", "output"), [
    (b"all good", {"text": "all good"}),
    (b"", {"text": ""}),
    (b'{"score": NaN}', {"text": '{"score": NaN}'}),  # jsonb cannot store NaN
])
def test_a_2xx_body_that_is_not_json_becomes_text(agent_server, make_request, raw, output):
    agent_server.reply(200, raw=raw, headers={"Content-Type": "text/plain"})

    assert call(make_request({"url": agent_server.url})) == output


@pytest.mark.parametrize(("status", "transient", "category"), [
    (500, True, "agent_error"),
    (503, True, "agent_error"),
    (429, True, "capacity"),
    (401, False, "unauthorized"),
    (403, False, "unauthorized"),
    (404, False, "agent_error"),
    (422, False, "agent_error"),
])
def test_error_statuses_say_whether_a_retry_can_help(agent_server, make_request, status, transient, category):
    agent_server.reply(status, {"error": {"message": "agent says no"}})

    error = failure(make_request({"url": agent_server.url}))

    assert (error.transient, error.category) == (transient, category)
    assert f"HTTP {status}" in str(error) and "agent says no" in str(error)


@pytest.mark.parametrize(("status", "header", "seconds"), [
    (429, "120", 120.0),
    (503, "7", 7.0),
    (503, None, None),
    (429, "soon", None),
])
def test_retry_after_is_passed_on(agent_server, make_request, status, header, seconds):
    agent_server.reply(status, {"error": "busy"}, headers={"Retry-After": header} if header else {})

    assert failure(make_request({"url": agent_server.url})).retry_after == seconds


def test_retry_after_as_an_http_date():
    from datetime import datetime, timedelta
    from email.utils import format_datetime

    later = datetime.now(UTC) + timedelta(seconds=90)
    assert 80 <= transport.retry_after_seconds(format_datetime(later, usegmt=True)) <= 90
    assert transport.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # already past


def test_a_redirect_is_not_followed(agent_server, make_request):
    agent_server.reply(302, raw=b"", headers={"Location": agent_server.url + "/elsewhere"})

    error = failure(make_request({"url": agent_server.url + "/runs"}))

    assert (error.transient, error.category) == (False, "agent_error")
    assert [d.path for d in agent_server.deliveries] == ["/runs"]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_no_redirect_is_followed_and_the_error_says_where_it_points(agent_server, make_request, status):
    agent_server.reply(status, raw=b"", headers={"Location": "https://agent.example:8443/services/T0/B0/secret"})

    error = failure(make_request({"url": agent_server.url + "/runs"}))

    assert (error.transient, error.reached, error.category) == (False, False, "agent_error")
    assert [d.path for d in agent_server.deliveries] == ["/runs"]
    assert f"HTTP {status}" in str(error) and "redirects are not followed" in str(error)
    assert "https://agent.example:8443 (another path)" in str(error)
    assert "secret" not in str(error)  # a webhook path is often a secret


@pytest.mark.parametrize(("location", "said"), [
    ("/runs/", "same path, trailing slash added"),
    ("https://{host}/runs", "same path"),
])
def test_a_redirect_to_the_same_path_says_so(agent_server, make_request, location, said):
    host = agent_server.url.removeprefix("http://")
    agent_server.reply(308, raw=b"", headers={"Location": location.format(host=host)})

    error = failure(make_request({"url": agent_server.url + "/runs"}))

    assert f"({said})" in str(error)
    assert len(agent_server.deliveries) == 1


def test_a_rejected_tls_certificate_is_permanent(self_signed_server, make_request):
    error = failure(make_request({"url": self_signed_server.url + "/runs"}))

    assert (error.transient, error.reached, error.category) == (False, False, "agent_error")
    assert "TLS certificate" in str(error)
    assert self_signed_server.deliveries == []


def test_connection_refused_is_transient(closed_port_url, make_request):
    error = failure(make_request({"url": closed_port_url}))

    assert (error.transient, error.category) == (True, "agent_error")
    assert "127.0.0.1" in str(error)


def test_a_dropped_connection_is_transient(agent_server, make_request):
    agent_server.reply(drop=True)

    error = failure(make_request({"url": agent_server.url}))

    assert (error.transient, error.category) == (True, "agent_error")


def test_a_server_slower_than_the_timeout_is_a_transient_timeout(agent_server, make_request):
    agent_server.reply(200, {"late": True}, delay=5)

    error = failure(make_request({"url": agent_server.url, "timeout": 0.3}))

    assert (error.transient, error.category) == (True, "timeout")


def test_the_runs_timeout_wins_when_it_is_shorter(agent_server, make_request):
    agent_server.reply(200, {"late": True}, delay=5)

    error = failure(make_request({"url": agent_server.url, "timeout": 60}, timeout_seconds=1))

    assert error.category == "timeout"


def test_a_trickled_body_cannot_outlast_the_timeout(agent_server, make_request):
    # Each byte arrives well within the socket timeout; the whole body does not.
    agent_server.reply(200, {"padding": "x" * 40}, trickle=0.05)

    error = failure(make_request({"url": agent_server.url, "timeout": 0.5}))

    assert (error.transient, error.category) == (True, "timeout")


def test_an_oversized_body_is_refused(agent_server, make_request, monkeypatch):
    monkeypatch.setattr(transport, "MAX_RESPONSE_BYTES", 100)
    agent_server.reply(200, {"padding": "x" * 200})

    error = failure(make_request({"url": agent_server.url}))

    assert (error.transient, error.category) == (False, "agent_error")


@pytest.mark.parametrize(("config", "named"), [
    ({}, "'url'"),
    ({"url": "ftp://example.com/run"}, "'url'"),
    ({"url": "http://"}, "'url'"),
    ({"url": "http://agent.local", "headers": ["X-Team"]}, "'headers'"),
    ({"url": "http://agent.local", "headers": {"Authorization": "Bearer s3cret"}}, "token_env"),
    ({"url": "http://agent.local", "headers": {"X-Team": "ops\r\nX-Injected: 1"}}, "'headers'"),
    ({"url": "http://agent.local", "token_env": 7}, "'token_env'"),
    ({"url": "http://agent.local", "timeout": 0}, "'timeout'"),
    ({"url": "http://agent.local", "timeout": "10"}, "'timeout'"),
])
def test_validate_config_names_the_bad_key(config, named):
    with pytest.raises(AdapterError) as caught:
        HttpAdapter.validate_config(config)

    assert (caught.value.transient, caught.value.category) == (False, "config")
    assert named in str(caught.value)


def test_a_bad_config_fails_the_call_before_any_request(make_request):
    error = failure(make_request({"url": "nope"}))

    assert error.category == "config"


def test_the_adapter_declares_itself_idempotent():
    assert adapter_for("http").idempotent is True


def test_the_run_s_workspace_travels_as_a_header(agent_server, make_request):
    """The tenant's id, so one agent server can bind each workspace's own credentials."""
    agent_server.reply(200, {"ok": True})
    call(make_request({"url": agent_server.url + "/runs"}, workspace_id=7))
    assert agent_server.last.headers["tickwise-workspace"] == "7"

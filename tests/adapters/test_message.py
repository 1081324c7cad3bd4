"""The ``message`` adapter: a log line, or a real loopback webhook."""
from __future__ import annotations

import logging

import pytest

from adapters import AdapterError, adapter_for
from adapters.message import MessageAdapter

KEY = "sched-7-v3-2026-03-08T07:30:00Z"


def call(request):
    return adapter_for("message").call(request)


def failure(request) -> AdapterError:
    with pytest.raises(AdapterError) as caught:
        call(request)
    return caught.value


def test_without_a_url_the_text_is_logged(make_request, caplog):
    with caplog.at_level(logging.INFO, logger="tickwise.message"):
        output = call(make_request({}, input="Stand-up in 5 minutes"))

    assert output == {"message": "Stand-up in 5 minutes", "channel": "log"}
    [record] = [r for r in caplog.records if r.name == "tickwise.message"]
    assert record.levelno == logging.INFO
    assert "Stand-up in 5 minutes" in record.getMessage() and "run 42" in record.getMessage()


def test_a_webhook_receives_the_text_and_the_key(agent_server, make_request):
    output = call(make_request({"url": agent_server.url + "/hook", "channel": "#ops"},
                               input="Stand-up in 5 minutes"))

    assert output == {"message": "Stand-up in 5 minutes", "channel": "#ops"}
    assert agent_server.last.path == "/hook"
    assert agent_server.last.body == {"text": "Stand-up in 5 minutes"}
    assert agent_server.last.headers["idempotency-key"] == KEY


def test_the_webhook_url_may_come_from_the_environment(agent_server, make_request, monkeypatch):
    monkeypatch.setenv("OPS_WEBHOOK", agent_server.url + "/services/T0/B0/secret")

    call(make_request({"url_env": "OPS_WEBHOOK"}))

    assert agent_server.last.path == "/services/T0/B0/secret"


def test_a_missing_webhook_variable_is_a_config_error_naming_it(make_request, monkeypatch):
    monkeypatch.delenv("OPS_WEBHOOK", raising=False)

    error = failure(make_request({"url_env": "OPS_WEBHOOK"}))

    assert (error.transient, error.category) == (False, "config")
    assert "OPS_WEBHOOK" in str(error)


@pytest.mark.parametrize(("status", "transient", "category"), [
    (500, True, "agent_error"),
    (429, True, "capacity"),
    (403, False, "unauthorized"),
    (404, False, "agent_error"),
])
def test_webhook_errors_map_like_http(agent_server, make_request, status, transient, category):
    agent_server.reply(status, raw=b"no_service", headers={"Content-Type": "text/plain"})

    error = failure(make_request({"url": agent_server.url}))

    assert (error.transient, error.category) == (transient, category)
    assert "no_service" in str(error)


def test_errors_do_not_reveal_the_webhook_path(agent_server, make_request):
    agent_server.reply(404, raw=b"")

    error = failure(make_request({"url": agent_server.url + "/services/T0/B0/secret"}))

    assert "secret" not in str(error)


def test_an_unreachable_webhook_is_transient(closed_port_url, make_request):
    error = failure(make_request({"url": closed_port_url}))

    assert (error.transient, error.category) == (True, "agent_error")


def test_a_slow_webhook_is_a_transient_timeout(agent_server, make_request):
    agent_server.reply(200, {}, delay=5)

    error = failure(make_request({"url": agent_server.url, "timeout": 0.3}))

    assert (error.transient, error.category) == (True, "timeout")


@pytest.mark.parametrize(("config", "named"), [
    ({"url": "slack"}, "'url'"),
    ({"channel": ""}, "'channel'"),
    ({"channel": 5}, "'channel'"),
    ({"url_env": ""}, "'url_env'"),
])
def test_validate_config_names_the_bad_key(config, named):
    with pytest.raises(AdapterError) as caught:
        MessageAdapter.validate_config(config)

    assert (caught.value.transient, caught.value.category) == (False, "config")
    assert named in str(caught.value)

"""The ``openai`` adapter against a real loopback chat-completions server."""
from __future__ import annotations

import pytest

from adapters import AdapterError, adapter_for
from adapters.openai import OpenAIAdapter

KEY = "sched-7-v3-2026-03-08T07:30:00Z"


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


@pytest.fixture
def config(chat_server):
    return {"base_url": chat_server.url + "/v1", "model": "gpt-test"}


def call(request):
    return adapter_for("openai").call(request)


def failure(request) -> AdapterError:
    with pytest.raises(AdapterError) as caught:
        call(request)
    return caught.value


def test_asks_for_one_chat_completion_with_the_input_as_the_user_message(chat_server, config, make_request):
    output = call(make_request(config))

    delivery = chat_server.last
    assert delivery.path == "/v1/chat/completions"
    assert delivery.body == {"model": "gpt-test", "messages": [{"role": "user", "content": "Summarise 2026-03-08"}]}
    assert delivery.headers["authorization"] == "Bearer sk-test"
    assert delivery.headers["idempotency-key"] == KEY
    assert output == {
        "content": "echo: Summarise 2026-03-08 (after 0 messages)", "model": "gpt-test",
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        "message": {"role": "assistant", "content": "echo: Summarise 2026-03-08 (after 0 messages)"},
    }


def test_a_persistent_session_sends_the_system_prompt_then_history_then_the_input(chat_server, config,
                                                                                 make_request):
    history = [{"role": "user", "content": "Summarise 2026-03-07"},
               {"role": "assistant", "content": "Quiet day.", "name": "ignored"}]

    output = call(make_request({**config, "system": "You are terse."}, extra={"history": history}))

    assert chat_server.last.body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Summarise 2026-03-07"},
        {"role": "assistant", "content": "Quiet day."},
        {"role": "user", "content": "Summarise 2026-03-08"},
    ]
    assert output["content"].endswith("(after 3 messages)")


def test_history_that_is_not_role_and_content_is_refused(chat_server, config, make_request):
    error = failure(make_request(config, extra={"history": ["hello"]}))

    assert (error.transient, error.category) == (False, "agent_error")
    assert chat_server.deliveries == []


def test_params_are_sent_but_cannot_replace_model_or_messages(chat_server, config, make_request):
    call(make_request({**config, "params": {"temperature": 0.2, "max_tokens": 50}}))

    assert chat_server.last.body["temperature"] == 0.2
    assert chat_server.last.body["max_tokens"] == 50
    with pytest.raises(AdapterError, match="'params'"):
        OpenAIAdapter.validate_config({**config, "params": {"model": "other"}})


def test_the_key_comes_from_the_variable_named_in_the_config(chat_server, config, make_request, monkeypatch):
    monkeypatch.setenv("LOCAL_LLM_KEY", "sk-local")

    call(make_request({**config, "api_key_env": "LOCAL_LLM_KEY"}))

    assert chat_server.last.headers["authorization"] == "Bearer sk-local"


@pytest.mark.parametrize("variable", ["OPENAI_API_KEY", "LOCAL_LLM_KEY"])
def test_a_missing_key_variable_is_a_config_error_naming_it(chat_server, config, make_request, monkeypatch,
                                                            variable):
    monkeypatch.delenv("OPENAI_API_KEY")
    if variable != "OPENAI_API_KEY":
        config["api_key_env"] = variable

    error = failure(make_request(config))

    assert (error.transient, error.category) == (False, "config")
    assert variable in str(error)
    assert chat_server.deliveries == []


def test_a_server_without_keys_needs_no_variable(chat_server, config, make_request, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")

    call(make_request({**config, "api_key_env": None, "headers": None}))

    assert "authorization" not in chat_server.last.headers


@pytest.mark.parametrize(("status", "transient", "category"), [
    (500, True, "agent_error"),
    (503, True, "agent_error"),
    (429, True, "capacity"),
    (401, False, "unauthorized"),
    (404, False, "agent_error"),
    (400, False, "agent_error"),
])
def test_error_statuses_say_whether_a_retry_can_help(chat_server, config, make_request, status, transient,
                                                     category):
    chat_server.reply(status, {"error": {"message": "model overloaded", "type": "server_error"}})

    error = failure(make_request(config))

    assert (error.transient, error.category) == (transient, category)
    assert "model overloaded" in str(error)


def test_a_reply_that_is_not_a_completion_is_a_permanent_error(chat_server, config, make_request):
    chat_server.reply(200, {"error": {"message": "context length exceeded"}})

    error = failure(make_request(config))

    assert (error.transient, error.category) == (False, "agent_error")
    assert "context length exceeded" in str(error)


def test_a_reply_with_content_parts_is_joined(chat_server, config, make_request):
    parts = [{"type": "text", "text": "Quiet "}, {"type": "text", "text": "day."}]
    chat_server.reply(200, {"choices": [{"message": {"role": "assistant", "content": parts}}]})

    output = call(make_request(config))

    assert output["content"] == "Quiet day."
    assert output["model"] == "gpt-test"
    assert output["usage"] is None


def test_connection_refused_is_transient(closed_port_url, make_request):
    error = failure(make_request({"base_url": closed_port_url, "model": "gpt-test"}))

    assert (error.transient, error.category) == (True, "agent_error")


def test_a_slow_server_is_a_transient_timeout(chat_server, config, make_request):
    chat_server.reply(200, {"late": True}, delay=5)

    error = failure(make_request({**config, "timeout": 0.3}))

    assert (error.transient, error.category) == (True, "timeout")


@pytest.mark.parametrize(("config", "named"), [
    ({}, "'model'"),
    ({"model": ""}, "'model'"),
    ({"model": "gpt-test", "base_url": "localhost:8000"}, "'base_url'"),
    ({"model": "gpt-test", "api_key_env": 3}, "'api_key_env'"),
    ({"model": "gpt-test", "system": ["be terse"]}, "'system'"),
    ({"model": "gpt-test", "headers": {"Authorization": "Bearer sk-live"}}, "Authorization"),
])
def test_validate_config_names_the_bad_key(config, named):
    with pytest.raises(AdapterError) as caught:
        OpenAIAdapter.validate_config(config)

    assert (caught.value.transient, caught.value.category) == (False, "config")
    assert named in str(caught.value)


def test_the_adapter_does_not_claim_idempotency():
    assert adapter_for("openai").idempotent is False

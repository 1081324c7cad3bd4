"""``openai``: one chat completion from an OpenAI-compatible endpoint.

Config:

- ``model`` (required).
- ``base_url``: default ``https://api.openai.com/v1``; the request goes to
  ``{base_url}/chat/completions`` (vLLM, Ollama, LiteLLM and other compatible
  servers work the same way).
- ``api_key_env``: name of the environment variable holding the API key,
  default ``OPENAI_API_KEY``; set it to ``null`` for a server that takes no key.
  The key itself is never stored in the config.
- ``system``: an optional system prompt.
- ``params``: extra request fields (``temperature``, ``max_tokens``, ...);
  ``model`` and ``messages`` cannot be overridden.
- ``headers``, ``timeout``: as for ``http``.

Messages are the system prompt, then ``request.extra["history"]`` (the earlier
turns of a persistent session, supplied by the execute service), then the
rendered input as the user message. The output is ``{"content", "model",
"usage", "message"}`` (and ``"tool_rounds", "tool_calls"`` when tools were
offered); ``message`` is the assistant turn to append to the session's history.

Tools (docs/autonomy.md): the run's tools (``request.tools``, from one
pydantic model each) are offered as function tools; each tool call is run
through Tickwise's executor (``request.tool_executor``, the same service as
the tools API), its answer sent back as a ``tool`` message, and the
conversation continues until the model answers in words, for at most
``TICKWISE_TOOL_ROUNDS`` rounds (the last request offers no tools). Every
call, its arguments and its answer are recorded in ``tool_calls``.
"""
from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from .base import Adapter, AdapterError, AgentRequest, ConfigField, config_error
from .transport import (
    check_env_name,
    check_headers,
    check_timeout,
    check_url,
    env_secret,
    error_detail,
    post_json,
    timeout_for,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"


class OpenAIAdapter(Adapter):
    kind = "openai"
    # The key is sent as an Idempotency-Key header, but the chat-completions
    # API does not promise to deduplicate by it: a lost outcome is not retried.
    idempotent = False
    config_fields = (
        ConfigField("model", "text", "The model name, e.g. gpt-4o-mini.", required=True),
        ConfigField("base_url", "url", f"An OpenAI-compatible API (vLLM, Ollama, LiteLLM…); default "
                                       f"{DEFAULT_BASE_URL}."),
        ConfigField("api_key_env", "env", f"Name of the environment variable holding the API key; default "
                                          f"{DEFAULT_API_KEY_ENV}. The key is never stored."),
        ConfigField("system", "textarea", "An optional system prompt."),
        ConfigField("params", "object", 'Extra request fields as a JSON object ({"temperature": 0.2}); not '
                                        "model or messages."),
        ConfigField("headers", "object", "Extra request headers as a JSON object; Authorization is refused."),
        ConfigField("timeout", "number", "Seconds to wait for the answer; the run's own timeout wins when "
                                         "shorter."),
    )

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        if not isinstance(config, dict):
            raise config_error("config must be a JSON object")
        if not isinstance(config.get("model"), str) or not config["model"]:
            raise config_error("config['model'] is required (the model name, e.g. 'gpt-4o-mini')")
        check_url(config.get("base_url", DEFAULT_BASE_URL), "base_url")
        check_env_name(config, "api_key_env")
        if not isinstance(config.get("system", ""), str):
            raise config_error("config['system'] must be a string")
        params = config.get("params", {})
        if not isinstance(params, dict) or {"model", "messages"} & set(params):
            raise config_error("config['params'] must be an object without 'model' or 'messages'")
        check_headers(config.get("headers"))
        check_timeout(config.get("timeout"))

    def call(self, request: AgentRequest) -> Any:
        config = request.config
        self.validate_config(config)
        url = config.get("base_url", DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"
        messages: list[dict[str, Any]] = list(chat_messages(request))
        offered = list(request.tools) if request.tool_executor else []
        calls: list[dict[str, Any]] = []
        rounds = 0
        while True:
            body = {**config.get("params", {}), "model": config["model"], "messages": messages}
            # The last round offers no tools: the model must answer in words.
            if offered and rounds < tool_rounds():
                body["tools"] = offered
            data = post_json(url, body, headers=_headers(request), timeout=timeout_for(request)).output()
            asked = _tool_calls(data) if "tools" in body else []
            if not asked:
                output = completion_output(data, model=config["model"])
                return {**output, "tool_rounds": rounds, "tool_calls": calls} if offered else output
            rounds += 1
            messages.append(data["choices"][0]["message"])
            messages.extend(_run_tools(request, asked, calls))


def tool_rounds() -> int:
    """Rounds of tool calls one run may take (``TICKWISE_TOOL_ROUNDS``)."""
    return int(settings.TICKWISE.get("TOOL_ROUNDS", 8))


def _tool_calls(data: Any) -> list[dict[str, Any]]:
    try:
        asked = data["choices"][0]["message"].get("tool_calls") or []
    except (KeyError, IndexError, TypeError, AttributeError):
        return []  # completion_output names what is wrong with the reply
    return [call for call in asked if isinstance(call, dict)]


def _run_tools(request: AgentRequest, asked: list[dict[str, Any]],
               calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each call through Tickwise's tool executor; the ``tool`` messages the model reads next.

    A refusal or bad arguments come back as the tool's answer, never raised:
    the model can change its request, as a person would.
    """
    assert request.tool_executor is not None
    answers = []
    for call in asked:
        function = call.get("function") or {}
        name = str(function.get("name", ""))
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            arguments = None
        if isinstance(arguments, dict):
            result = request.tool_executor(name, arguments)
        else:
            result = json.dumps({"ok": False, "error": "validation-error",
                                 "message": "the arguments must be a JSON object"})
        calls.append({"name": name, "arguments": arguments, "result": result})
        answers.append({"role": "tool", "tool_call_id": str(call.get("id", "")), "content": result})
    return answers


def chat_messages(request: AgentRequest) -> list[dict[str, str]]:
    system = request.config.get("system")
    history = request.extra.get("history") or []
    try:
        turns = [{"role": str(turn["role"]), "content": turn["content"]} for turn in history]
    except (KeyError, TypeError):
        raise AdapterError("session history must be a list of {'role', 'content'} objects",
                           transient=False) from None
    return ([{"role": "system", "content": system}] if system else []) + turns + [
        {"role": "user", "content": request.input}]


def _headers(request: AgentRequest) -> dict[str, str]:
    headers = {**(request.config.get("headers") or {}), "Idempotency-Key": request.idempotency_key}
    key_env = request.config.get("api_key_env", DEFAULT_API_KEY_ENV)
    if key_env:
        headers["Authorization"] = f"Bearer {env_secret(request.config, 'api_key_env', DEFAULT_API_KEY_ENV)}"
    return headers


def completion_output(data: Any, *, model: str) -> dict[str, Any]:
    """``{"content", "model", "usage", "message"}`` from a chat-completion reply."""
    try:
        message = data["choices"][0]["message"]
        content = _text(message.get("content"))
    except (KeyError, IndexError, TypeError, AttributeError):
        raise AdapterError(f"not a chat completion: {_describe(data)}", transient=False) from None
    return {"content": content, "model": data.get("model") or model, "usage": data.get("usage"),
            "message": {"role": "assistant", "content": content}}


def _describe(data: Any) -> str:
    text = data.get("text") if isinstance(data, dict) else None
    return error_detail(text if isinstance(text, str) else json.dumps(data))


def _text(content: Any) -> str:
    # Some compatible servers answer with a list of content parts; a reply
    # that is only tool calls has no content at all.
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""

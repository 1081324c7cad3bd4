"""The run token reaches the agent: a header for HTTP agents, the context for python callables."""
from __future__ import annotations

from datetime import UTC, datetime

from adapters.base import AgentRequest, request_context
from adapters.http import tool_headers


def request(**fields: object) -> AgentRequest:
    base: dict[str, object] = dict(run_id=7, agent="a", config={}, input="", session_id="s",
                                   tick_at=datetime(2026, 1, 1, tzinfo=UTC), trigger="manual",
                                   idempotency_key="k", attempt=1, timeout_seconds=30)
    return AgentRequest(**{**base, **fields})  # type: ignore[arg-type]


def test_the_token_and_the_tools_url_travel_as_headers_and_in_the_context():
    sent = request(run_token="twr_secret", tools_url="https://tw.example/api/v1/runs/7/tools")
    assert tool_headers(sent) == {"Tickwise-Run-Token": "twr_secret",
                                  "Tickwise-Tools-Url": "https://tw.example/api/v1/runs/7/tools"}
    context = request_context(sent)
    assert (context["run_token"], context["tools_url"]) == ("twr_secret", "https://tw.example/api/v1/runs/7/tools")


def test_no_token_no_headers_and_the_token_is_not_in_the_repr():
    assert tool_headers(request()) == {}
    assert "twr_secret" not in repr(request(run_token="twr_secret"))

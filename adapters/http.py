"""``http``: POST the run to an agent server and record its JSON answer.

Config:

- ``url`` (required unless ``url_env``): the agent server's endpoint.
- ``url_env``: name of an environment variable holding the URL, for URLs that
  are secrets themselves.
- ``headers``: extra request headers (no secrets; ``Authorization`` is refused).
- ``token_env``: name of an environment variable holding a bearer token, sent
  as ``Authorization: Bearer <token>``. The token never enters the database.
- ``timeout``: seconds; the run's own timeout applies when it is shorter.

The request body is ``{"run_id", "input", "session_id", "tick_at", "trigger",
"attempt", "idempotency_key"}`` and the key is also sent as the
``Idempotency-Key`` header. The run token travels as ``Tickwise-Run-Token``
and the run's tools API as ``Tickwise-Tools-Url`` (docs/autonomy.md). A JSON
reply is the run's output; any other 2xx body becomes ``{"text": body}``. Errors map as
tabled in ``docs/adapters.md``.
"""
from __future__ import annotations

from typing import Any

from .base import Adapter, AgentRequest, isoformat_z
from .transport import HTTP_CONFIG_FIELDS, post_json, request_headers, timeout_for, url_from, validate_http_config

RUN_TOKEN_HEADER = "Tickwise-Run-Token"
TOOLS_URL_HEADER = "Tickwise-Tools-Url"


class HttpAdapter(Adapter):
    kind = "http"
    # The key travels with every attempt, so an agent server that deduplicates
    # by it makes a retry after a lost outcome safe.
    idempotent = True
    config_fields = HTTP_CONFIG_FIELDS

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        validate_http_config(config, url_required=True)

    def call(self, request: AgentRequest) -> Any:
        self.validate_config(request.config)
        headers = request_headers(request.config, request.idempotency_key, request.workspace_id)
        headers.update(tool_headers(request))
        reply = post_json(url_from(request.config) or "", run_payload(request), headers=headers,
                          timeout=timeout_for(request))
        return reply.output()


def tool_headers(request: AgentRequest) -> dict[str, str]:
    """The run token and where the run's tools answer (``/api/v1/runs/{run}/tools/…``)."""
    headers = {}
    if request.run_token:
        headers[RUN_TOKEN_HEADER] = request.run_token
    if request.tools_url:
        headers[TOOLS_URL_HEADER] = request.tools_url
    return headers


def run_payload(request: AgentRequest) -> dict[str, Any]:
    return {
        "run_id": request.run_id, "input": request.input, "session_id": request.session_id,
        "tick_at": isoformat_z(request.tick_at), "trigger": request.trigger, "attempt": request.attempt,
        "idempotency_key": request.idempotency_key,
    }

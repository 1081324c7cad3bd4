"""``message``: deliver the rendered text as it is, with no LLM call.

Config:

- ``channel``: a label recorded with the output, default ``log``.
- ``url`` or ``url_env``: a webhook (Slack-style incoming webhooks and the
  like); the text is POSTed as ``{"text": ...}`` with the run's
  ``Idempotency-Key`` header. ``url_env`` names an environment variable holding
  the URL, since a webhook URL is usually a secret.
- ``headers``, ``token_env``, ``timeout``: as for ``http``.

Without a URL the text is logged at INFO on the ``tickwise.message`` logger.
The output is ``{"message": text, "channel": channel}``. Webhook errors map as
tabled in ``docs/adapters.md``.
"""
from __future__ import annotations

import logging
from typing import Any

from .base import Adapter, AgentRequest, ConfigField, config_error
from .transport import HTTP_CONFIG_FIELDS, post_json, request_headers, timeout_for, url_from, validate_http_config

log = logging.getLogger("tickwise.message")


class MessageAdapter(Adapter):
    kind = "message"
    # Webhook receivers rarely deduplicate, so a lost outcome is not retried.
    idempotent = False
    config_fields = (
        ConfigField("channel", "text", "A label recorded with the output (default log)."),
        ConfigField("url", "url", "A webhook the text is POSTed to as {\"text\": …} (Slack-style); "
                                  "without one the text is logged."),
        *(field for field in HTTP_CONFIG_FIELDS if field.name != "url"),
    )

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        validate_http_config(config, url_required=False)
        if not isinstance(config.get("channel", "log"), str) or not config.get("channel", "log"):
            raise config_error("config['channel'] must be a non-empty string")

    def call(self, request: AgentRequest) -> Any:
        self.validate_config(request.config)
        channel = request.config.get("channel", "log")
        url = url_from(request.config)
        if url:
            headers = request_headers(request.config, request.idempotency_key, request.workspace_id)
            post_json(url, {"text": request.input}, headers=headers, timeout=timeout_for(request))
        else:
            log.info("run %s [%s]: %s", request.run_id, channel, request.input)
        return {"message": request.input, "channel": channel}

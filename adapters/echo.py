"""``echo``: returns the rendered input, for demos and tests.

Config: ``sleep`` (seconds to wait first; a cancel request ends the wait),
``fail`` (``"transient"`` or ``"permanent"``: raise instead of answering).
"""
from __future__ import annotations

from typing import Any

from .base import Adapter, AdapterError, AgentRequest, ConfigField


class EchoAdapter(Adapter):
    kind = "echo"
    idempotent = True
    config_fields = (
        ConfigField("sleep", "number", "Seconds to wait before answering (a cancel request ends the wait)."),
        ConfigField("fail", "choice", "Raise instead of answering: transient (retried) or permanent.",
                    choices=("transient", "permanent")),
    )

    def call(self, request: AgentRequest) -> Any:
        request.cancel.wait(float(request.config.get("sleep", 0)))
        failure = request.config.get("fail")
        if failure:
            raise AdapterError(f"echo configured to fail ({failure})", transient=failure == "transient")
        return {"echo": request.input, "session_id": request.session_id}

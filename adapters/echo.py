"""``echo``: returns the rendered input, for demos and tests.

Config: ``sleep`` (seconds to wait first; a cancel request ends the wait),
``fail`` (``"transient"`` or ``"permanent"``: raise instead of answering).
"""
from __future__ import annotations

from typing import Any

from .base import Adapter, AdapterError, AgentRequest


class EchoAdapter(Adapter):
    kind = "echo"
    idempotent = True

    def call(self, request: AgentRequest) -> Any:
        request.cancel.wait(float(request.config.get("sleep", 0)))
        failure = request.config.get("fail")
        if failure:
            raise AdapterError(f"echo configured to fail ({failure})", transient=failure == "transient")
        return {"echo": request.input, "session_id": request.session_id}

"""Example callables for the ``python`` adapter.

Configure an agent with ``{"callable": "adapters.examples:echo_context"}``
to try the adapter without writing code.
"""
from __future__ import annotations

from typing import Any


def echo_context(context: dict[str, Any]) -> dict[str, Any]:
    """Return the rendered input and the run's identity: what a real function receives."""
    return {
        "echo": context["input"], "session_id": context["session_id"], "tick_at": context["tick_at"],
        "trigger": context["trigger"], "attempt": context["attempt"],
        "idempotency_key": context["idempotency_key"],
    }

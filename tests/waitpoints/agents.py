"""Python callables the worker runs in these tests (allowed by ``TICKWISE_PYTHON_CALLABLES``)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def park_on_token(context: dict[str, Any]) -> dict[str, Any]:
    """Park this attempt inside the worker, as an agent's directive would."""
    from triggers.waits import WaitIn, waitpoint_create

    parked = waitpoint_create(context["run_id"], WaitIn(kind="token", timeout_seconds=600),
                              now=datetime.now(UTC), attempt=context["attempt"])
    return {"waitpoint": str(parked.waitpoint.id)}

"""A run's concurrency scope: the ledger column its overlap policy counts runs by."""
from __future__ import annotations

from django.db.models import Q

from ..models import Run


def scope_column(run: Run) -> tuple[str, object]:
    """The run's concurrency scope as a column of the ledger and its value."""
    scope = run.concurrency_scope
    if scope == "agent":
        return "agent_id", run.agent_id
    if scope == "session":
        return "session_id", run.session_id
    if run.schedule_id is None:
        return "id", run.id  # a run without a schedule is its own scope
    return "schedule_id", run.schedule_id


def scope_filter(run: Run) -> Q:
    column, value = scope_column(run)
    return Q(**{column: value})

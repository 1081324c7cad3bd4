"""Record how an attempt ended. Every write is fenced by the attempt's token."""
from __future__ import annotations

import json
import logging
import random
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models.functions import Now

from core import metrics

from .. import sql
from ..models import AgentCall, CallState, ErrorCategory, Run, RunQuerySet, RunState
from .claim import Claim, open_call
from .ended import ending, run_ended

log = logging.getLogger("tickwise.outcome")

# An agent asking for more than this (a Retry-After of days) is waited on this long.
RETRY_AFTER_CAP = 3600  # seconds


def fenced(claim: Claim) -> RunQuerySet:
    return Run.objects.fenced(claim.run.id, claim.token)


def record_intent(claim: Claim, run_input: str) -> bool:
    """Before the call: the input and an intent row, in one short transaction."""
    with transaction.atomic():
        if not fenced(claim).update(input=run_input):
            return False
        open_call(claim.run)
        return True


def record_success(claim: Claim, output: Any, *, cancelled: bool) -> str | None:
    """The attempt answered (or was cancelled and finished): terminal, and the failure streak ends."""
    state = RunState.CANCELLED if cancelled else RunState.SUCCEEDED
    params = {"state": state, "output": None if output is None else json.dumps(storable(output)),
              "id": claim.run.id, "token": claim.token}
    with ending(claim.run), connection.cursor() as cursor:
        sql.SUCCESS.execute(cursor, params)
        (recorded,) = cursor.fetchone()
        if recorded is None:
            metrics.FENCING_REJECTS.labels("success").inc()
            log.warning("run %s: outcome rejected, attempt token %s is stale", claim.run.id, claim.token)
            return None
        metrics.run_finished(claim.run.trigger, str(recorded))
        run_ended(claim.run, now=None, failed=False)
    return str(recorded)


def record_failure(claim: Claim, *, message: str, category: str, transient: bool, now: datetime,
                   retry_after: float | None = None) -> str | None:
    """A failed attempt: retried after a backoff when transient and attempts remain, else terminal.

    ``retry_after`` is the agent's own minimum wait (an HTTP ``Retry-After``),
    honoured up to ``RETRY_AFTER_CAP``. ``now`` is when the failure was seen
    (after the call, not when the attempt began): the wait counts from it, so
    a slow failure is never retried sooner than the agent asked.
    """
    run = claim.run
    retry = transient and run.attempt < run.max_attempts
    fields: dict[str, Any] = {"error_category": category or ErrorCategory.AGENT_ERROR,
                              "error_message": storable(message[:2000]), "lease_expires_at": None}
    if retry:
        # The retry waits in the database; the outbox sweeper republishes it when due.
        wait = max(backoff(run), timedelta(seconds=min(retry_after or 0, RETRY_AFTER_CAP)))
        fields.update(state=RunState.PENDING, published_at=None, not_before=now + wait)
    else:
        fields.update(state=RunState.DEAD if transient else RunState.FAILED, finished_at=Now())
    with transaction.atomic():
        if not fenced(claim).update(**fields):
            metrics.FENCING_REJECTS.labels("failure").inc()
            log.warning("run %s: failure rejected, attempt token %s is stale", run.id, claim.token)
            return None
        _close_call(claim, CallState.FAILED, message)
        metrics.attempt_failed(run.trigger, fields["state"], fields["error_category"])
        if not retry:
            run_ended(claim.run, now=now, failed=True)
    return fields["state"]


def record_unknown(claim: Claim, *, message: str, category: str, now: datetime) -> str | None:
    """The agent may have acted and the outcome is lost: terminal ``unknown``, for a person to judge."""
    with transaction.atomic():
        if not fenced(claim).update(state=RunState.UNKNOWN, error_category=category, finished_at=Now(),
                                    error_message=storable(message[:2000]), lease_expires_at=None):
            metrics.FENCING_REJECTS.labels("unknown").inc()
            return None
        _close_call(claim, CallState.FAILED, message)
        metrics.run_finished(claim.run.trigger, RunState.UNKNOWN, category)
        run_ended(claim.run, now=now, failed=True)
    return RunState.UNKNOWN


def _close_call(claim: Claim, state: str, message: str = "") -> None:
    AgentCall.objects.filter(run_id=claim.run.id, attempt=claim.run.attempt).update(
        state=state, finished_at=Now(), error_message=storable(message[:2000]))


def storable(value: Any) -> Any:
    """``value`` with NUL characters replaced: PostgreSQL text and jsonb cannot hold them.

    An agent's answer is arbitrary; one NUL must not make its outcome unwritable
    (the run would stay ``running`` until its lease expired).
    """
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable(item) for item in value]
    return value


def backoff(run: Run) -> timedelta:
    """Exponential backoff with jitter in [ceiling/2, ceiling], capped."""
    ceiling = min(run.retry_backoff_max_seconds, run.retry_backoff_seconds * 2 ** max(0, run.attempt - 1))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))

"""Claim a run for one attempt, under its schedule's overlap policy.

The claim is a compare-and-set on ``(state=pending, fencing_token=T)`` that
moves the row to ``running`` with token ``T+1``. The overlap check and the
claim run in one transaction holding a PostgreSQL advisory lock on the
concurrency scope, so two workers cannot both see a free scope and both run.
A crashed holder never blocks the scope: only ``running`` rows count, and the
reaper ends those whose lease expired.

The common case (the scope has room) is one round trip: the lock, the
conditional claim and the intent row go to PostgreSQL as one multi-statement
query, which runs as one transaction; each statement takes a fresh snapshot,
so the count after the lock sees every claim committed before it. Anything
else (a busy scope, a claim lost to another worker) takes the general path,
which decides skip, wait or cancel with ``overlap_decide``.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.db.models.functions import Now

from core import metrics
from core.policies import Overlap, overlap_decide, overlap_keeps_order, overlap_run_limit
from core.prepared import Prepared, instance_from_row

from .. import sql
from ..models import AgentCall, Run, RunQuerySet, RunState, SkipReason
from .ended import run_ended
from .scope import scope_column, scope_filter

log = logging.getLogger("tickwise.claim")

# How long a buffered run waits before the sweeper offers it again.
BUFFER_RECHECK = timedelta(seconds=1)


@dataclass(frozen=True)
class Claim:
    run: Run
    token: int


def lease_for(run: Run) -> timedelta:
    return timedelta(seconds=run.timeout_seconds + settings.TICKWISE["LEASE_MARGIN"])


def run_load(run_id: int) -> Run | None:
    """The run with its schedule and agent, in one read.

    Written out rather than ``select_related``: building that query costs a
    worker about five times the read itself, on every run.
    """
    statement, layout = sql.LOAD, sql.LOAD_LAYOUT
    try:
        row = _read(statement, run_id)
    except (InterfaceError, OperationalError):
        if connection.in_atomic_block:
            raise
        # A connection kept from an earlier task broke (a worker does not ping
        # before each task): a read is safe to repeat on a new one.
        log.warning("database connection lost; reconnecting")
        connection.close()
        row = _read(statement, run_id)
    if row is None:
        return None
    loaded = []
    for model, fields in layout:
        loaded.append(instance_from_row(model, fields, row))
        row = row[len(fields):]
    run, schedule, agent = loaded
    if run.schedule_id is not None:
        run.schedule = schedule
        if schedule.agent_id == agent.id:
            schedule.agent = agent  # the same row: no second read for ``str(schedule)``
    run.agent = agent
    return run


def _read(statement: Prepared, run_id: int) -> tuple | None:
    with connection.cursor() as cursor:
        statement.execute(cursor, {"id": run_id})
        return cursor.fetchone()


def run_claim(run_id: int | Run, *, owner: str, now: datetime, intent: str | None = None) -> Claim | None:
    """Claim a run or apply its overlap decision; None when this attempt does not run.

    With ``intent`` (the rendered input) the claim also records the attempt's
    intent in the same short transaction, before the agent is called.
    """
    run = run_id if isinstance(run_id, Run) else run_load(run_id)
    if run is None or run.state != RunState.PENDING or (run.not_before and run.not_before > now):
        return None
    # ``buffer`` starts runs in dispatch order: the one-round-trip claim counts
    # only running runs, so an earlier run still waiting would be overtaken.
    if intent is not None and not overlap_keeps_order(run.overlap_policy):
        claim = _claim_if_room(run, owner=owner, now=now, intent=intent)
        if claim is not None:
            return claim
    with transaction.atomic():
        _lock_scope(run)
        decision = _overlap(run)
        if decision is Overlap.RUN or decision is Overlap.CANCEL_PREVIOUS:
            return _take(run, owner=owner, cancel_others=decision is Overlap.CANCEL_PREVIOUS, now=now,
                         intent=intent)
        if decision is Overlap.WAIT:
            _fenced_pending(run).update(buffered=True, published_at=None, not_before=now + BUFFER_RECHECK)
            skipped = False
        else:
            skipped = bool(_fenced_pending(run).update(state=RunState.SKIPPED, skip_reason=SkipReason.OVERLAP,
                                                       buffered=False, finished_at=now))
        log.info("run %s: overlap policy %s decided %s", run.id, run.overlap_policy, decision.value)
    if skipped:
        metrics.overlap_skipped(run.trigger, run.overlap_policy)
        run_ended(run, now=now, failed=False)  # a skipped tick ends its run: the next one is planned
    return None


def _scope_lock_key(run: Run) -> int:
    column, value = scope_column(run)
    return zlib.crc32(f"{column}={value}".encode())


def _lock_scope(run: Run) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql.SCOPE_LOCK, [_scope_lock_key(run)])


def _claim_if_room(run: Run, *, owner: str, now: datetime, intent: str) -> Claim | None:
    """The common case in one round trip; None sends the caller down the general path."""
    column, value = scope_column(run)
    limit = overlap_run_limit(run.overlap_policy, max_concurrent=run.max_concurrent)
    params = {"owner": owner, "lease": lease_for(run), "input": intent, "id": run.id,
              "token": run.fencing_token, "scope": value, "limit": limit}
    with connection.cursor() as cursor:
        sql.CLAIM_IF_ROOM[column].execute(cursor, params, before=sql.SCOPE_LOCK,
                                before_params=(_scope_lock_key(run),))
        row = cursor.fetchone()
    if row is None:
        return None
    run.state, (run.attempt, run.fencing_token) = RunState.RUNNING, row
    run.lease_owner, run.buffered, run.started_at, run.input = owner, False, now, intent
    return Claim(run=run, token=run.fencing_token)


def _overlap(run: Run) -> Overlap:
    scope = Run.objects.filter(scope_filter(run)).exclude(id=run.id)
    active = scope.filter(state=RunState.RUNNING).count()
    buffered = scope.filter(state=RunState.PENDING, buffered=True).count() if active else 0
    ahead = 0
    if overlap_keeps_order(run.overlap_policy) and not active:
        ahead = scope.filter(state=RunState.PENDING, id__lt=run.id).count()
    return overlap_decide(run.overlap_policy, active=active, buffered=buffered,
                          max_concurrent=run.max_concurrent, retry=run.attempt > 0, ahead=ahead)


def _take(run: Run, *, owner: str, cancel_others: bool, now: datetime, intent: str | None) -> Claim | None:
    fields = {"state": RunState.RUNNING, "attempt": F("attempt") + 1, "fencing_token": F("fencing_token") + 1,
              "lease_owner": owner, "lease_expires_at": Now() + lease_for(run), "started_at": Now(),
              "buffered": False}
    if intent is not None:
        fields["input"] = intent
    if not _fenced_pending(run).update(**fields):
        log.info("run %s: claimed elsewhere", run.id)
        return None
    if cancel_others:
        Run.objects.filter(scope_filter(run), state=RunState.RUNNING).exclude(id=run.id).update(
            cancel_requested_at=now)
    # The UPDATE matched the token we read, so the new values are known without a reload.
    run.state, run.attempt, run.fencing_token = RunState.RUNNING, run.attempt + 1, run.fencing_token + 1
    run.lease_owner, run.buffered, run.started_at = owner, False, now
    if intent is not None:
        run.input = intent
        open_call(run)
    return Claim(run=run, token=run.fencing_token)


def open_call(run: Run) -> AgentCall:
    """The side-effect ledger's intent row for the run's current attempt and token."""
    return AgentCall.objects.create(run_id=run.id, attempt=run.attempt, fencing_token=run.fencing_token,
                                    idempotency_key=run.idempotency_key)


def _fenced_pending(run: Run) -> RunQuerySet:
    return Run.objects.fenced(run.id, run.fencing_token, RunState.PENDING)

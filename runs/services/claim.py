"""Claim a run for one attempt, under its schedule's overlap policy.

The claim is a compare-and-set on ``(state=pending, fencing_token=T)`` that
moves the row to ``running`` with token ``T+1``. The overlap check and the
claim run in one transaction holding a PostgreSQL advisory lock on the
concurrency scope, so two workers cannot both see a free scope and both run.
A crashed holder never blocks the scope: only ``running`` rows count, and the
reaper ends those whose lease expired.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Now

from schedules.policies import Overlap, overlap_decide

from ..models import AgentCall, Run, RunState, SkipReason

log = logging.getLogger("tickwise.claim")

# How long a buffered run waits before the sweeper offers it again.
BUFFER_RECHECK = timedelta(seconds=1)


@dataclass(frozen=True)
class Claim:
    run: Run
    token: int


def lease_for(run: Run) -> timedelta:
    return timedelta(seconds=run.schedule.timeout_seconds + settings.TICKWISE["LEASE_MARGIN"])


def run_load(run_id: int) -> Run | None:
    return Run.objects.select_related("schedule", "agent").filter(id=run_id).first()


def run_claim(run_id: int | Run, *, owner: str, now: datetime, intent: str | None = None) -> Claim | None:
    """Claim a run or apply its overlap decision; None when this attempt does not run.

    With ``intent`` (the rendered input) the claim also records the attempt's
    intent in the same short transaction, before the agent is called.
    """
    run = run_id if isinstance(run_id, Run) else run_load(run_id)
    if run is None or run.state != RunState.PENDING or (run.not_before and run.not_before > now):
        return None
    with transaction.atomic():
        _lock_scope(run)
        decision = _overlap(run)
        if decision is Overlap.RUN or decision is Overlap.CANCEL_PREVIOUS:
            return _take(run, owner=owner, cancel_others=decision is Overlap.CANCEL_PREVIOUS, now=now,
                         intent=intent)
        if decision is Overlap.WAIT:
            _fenced_pending(run).update(buffered=True, published_at=None, not_before=now + BUFFER_RECHECK)
        else:
            _fenced_pending(run).update(state=RunState.SKIPPED, skip_reason=SkipReason.OVERLAP,
                                        buffered=False, finished_at=now)
        log.info("run %s: overlap policy %s decided %s", run.id, run.schedule.overlap_policy, decision.value)
        return None


def scope_filter(run: Run) -> Q:
    scope = run.schedule.concurrency_scope
    if scope == "agent":
        return Q(agent_id=run.agent_id)
    if scope == "session":
        return Q(session_id=run.session_id)
    return Q(schedule_id=run.schedule_id)


def _lock_scope(run: Run) -> None:
    key = f"{run.schedule.concurrency_scope}:{scope_filter(run)}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(key.encode())])


def _overlap(run: Run) -> Overlap:
    scope = Run.objects.filter(scope_filter(run)).exclude(id=run.id)
    active = scope.filter(state=RunState.RUNNING).count()
    buffered = scope.filter(state=RunState.PENDING, buffered=True).count() if active else 0
    return overlap_decide(run.schedule.overlap_policy, active=active, buffered=buffered,
                          max_concurrent=run.schedule.max_concurrent, retry=run.attempt > 0)


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


def _fenced_pending(run: Run):
    return Run.objects.filter(id=run.id, state=RunState.PENDING, fencing_token=run.fencing_token)

"""The one dispatch path: every start of every kind becomes one ledger row here.

Beat, run_now, the admin, the API, webhooks and wakeups all call
``run_dispatch``. The database decides uniqueness: a conflict on
``run_one_per_tick`` means the tick was already dispatched, not an error.
"""
from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from ..models import Run, RunState, TIMELINE_TRIGGERS
from ..publish import publish_runs_on_commit

log = logging.getLogger("tickwise.dispatch")


def idempotency_key(*, schedule_id: int, version: int, tick_at: datetime, trigger: str) -> str:
    """Derived once, stored on the row, handed to the agent on every attempt."""
    scope = "" if trigger in TIMELINE_TRIGGERS else f"|{trigger}"
    material = f"{schedule_id}|{version}|{tick_at.isoformat()}{scope}"
    return hashlib.sha256(material.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class DispatchRequest:
    trigger: str
    tick_at: datetime
    state: str = RunState.PENDING
    skip_reason: str = ""
    missed_count: int = 0
    period_start: datetime | None = None
    period_end: datetime | None = None


def run_dispatch(schedule, request: DispatchRequest, *, now: datetime, publish: bool = True) -> Run | None:
    """Insert the run for one tick and publish it after commit; None if it already exists.

    ``publish=False`` leaves publishing to the caller (the beat sends a whole
    batch after its commit); the outbox sweeper covers a caller that dies first.
    """
    run = _build_run(schedule, request, now=now)
    try:
        with transaction.atomic():
            run.save(force_insert=True)
    except IntegrityError:
        log.info("tick %s of schedule %s already dispatched", request.tick_at, schedule.pk)
        return None
    if publish and run.state == RunState.PENDING:
        publish_runs_on_commit([run.pk])
    return run


def _build_run(schedule, request: DispatchRequest, *, now: datetime) -> Run:
    key = idempotency_key(schedule_id=schedule.pk, version=schedule.version,
                          tick_at=request.tick_at, trigger=request.trigger)
    terminal = request.state != RunState.PENDING
    return Run(
        schedule=schedule, agent_id=schedule.agent_id, trigger=request.trigger,
        tick_at=request.tick_at, schedule_version=schedule.version, state=request.state,
        skip_reason=request.skip_reason, missed_count=request.missed_count,
        idempotency_key=key, max_attempts=schedule.max_attempts,
        run_number=0 if terminal else schedule.run_count + 1,
        period_start=request.period_start, period_end=request.period_end or request.tick_at,
        lateness_ms=int((now - request.tick_at).total_seconds() * 1000),
        finished_at=now if terminal else None,
        session_id=_session_id(schedule),
    )


def _session_id(schedule) -> str:
    if schedule.session_mode == "persistent" and schedule.session_id:
        return schedule.session_id
    return uuid.uuid4().hex

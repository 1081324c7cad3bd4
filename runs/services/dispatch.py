"""The one dispatch path: every start of every kind becomes one ledger row here.

Beat, run_now, the admin, the API, webhooks and wakeups all call
``run_dispatch`` (one tick) or ``runs_dispatch_many`` (a beat batch); the
first is a batch of one. The database decides uniqueness: each batch is one
``INSERT … ON CONFLICT DO NOTHING``, and a tick whose row already exists
(``run_one_per_tick``) comes back as None, "already dispatched", not an error.
"""
from __future__ import annotations

import hashlib
import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery

from ..models import Run, RunState, TIMELINE_TRIGGERS
from ..publish import publish_runs_on_commit

log = logging.getLogger("tickwise.dispatch")

# Rows per INSERT: PostgreSQL binds at most 65,535 parameters per statement.
INSERT_CHUNK = 1000


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
    """Insert the run for one tick and publish it after commit; None if it already exists."""
    return runs_dispatch_many([(schedule, request)], now=now, publish=publish)[0]


def runs_dispatch_many(items: Sequence[tuple[object, DispatchRequest]], *, now: datetime,
                       publish: bool = True) -> list[Run | None]:
    """Insert one run per ``(schedule, request)``; None in its place where the tick was already dispatched.

    New pending runs are published in one batch after commit (``publish=False``
    leaves that to the caller); the outbox sweeper covers a caller that dies
    first. Pending runs of one schedule are numbered from its ``run_count``
    in request order; the caller advances ``run_count``.
    """
    runs = _build_runs(items, now=now)
    inserted = _insert_new(runs)
    for (schedule, request), run in zip(items, inserted):
        if run is None:
            log.info("tick %s of schedule %s already dispatched", request.tick_at, schedule.pk)
    _renumber(items, inserted)
    if publish:
        # Each run's time limits are its schedule's: known here, not read back at publish.
        timeouts = {run.pk: schedule.timeout_seconds for (schedule, _), run in zip(items, inserted)
                    if run is not None and run.state == RunState.PENDING}
        publish_runs_on_commit(list(timeouts), timeouts=timeouts)
    return inserted


def _build_runs(items: Sequence[tuple[object, DispatchRequest]], *, now: datetime) -> list[Run]:
    started: Counter[int] = Counter()
    runs = []
    for schedule, request in items:
        if request.state == RunState.PENDING:
            started[schedule.pk] += 1
        runs.append(_build_run(schedule, request, now=now, started=started[schedule.pk]))
    return runs


def _build_run(schedule, request: DispatchRequest, *, now: datetime, started: int = 1) -> Run:
    key = idempotency_key(schedule_id=schedule.pk, version=schedule.version,
                          tick_at=request.tick_at, trigger=request.trigger)
    terminal = request.state != RunState.PENDING
    return Run(
        schedule=schedule, agent_id=schedule.agent_id, trigger=request.trigger,
        tick_at=request.tick_at, schedule_version=schedule.version, state=request.state,
        skip_reason=request.skip_reason, missed_count=request.missed_count,
        idempotency_key=key, max_attempts=schedule.max_attempts,
        run_number=0 if terminal else schedule.run_count + started,
        period_start=request.period_start, period_end=request.period_end or request.tick_at,
        lateness_ms=int((now - request.tick_at).total_seconds() * 1000),
        finished_at=now if terminal else None,
        session_id=_session_id(schedule),
    )


def _session_id(schedule) -> str:
    if schedule.session_mode == "persistent" and schedule.session_id:
        return schedule.session_id
    return uuid.uuid4().hex


def _insert_new(runs: list[Run]) -> list[Run | None]:
    """Insert ``runs``; each comes back saved, or None where a unique constraint already held its row."""
    ids: dict[str, int] = {}
    # More than one statement: all or nothing, even for a caller in autocommit.
    with transaction.atomic(savepoint=False) if len(runs) > INSERT_CHUNK else nullcontext():
        for start in range(0, len(runs), INSERT_CHUNK):
            ids.update(_insert_chunk(runs[start:start + INSERT_CHUNK]))
    saved: list[Run | None] = []
    for run in runs:
        # pop: a second request for the same key in one batch is "already dispatched" too.
        pk = ids.pop(run.idempotency_key, None)
        if pk is not None:
            run.pk, run._state.adding, run._state.db = pk, False, DEFAULT_DB_ALIAS
        saved.append(run if pk is not None else None)
    return saved


def _insert_chunk(runs: list[Run]) -> dict[str, int]:
    """One ``INSERT … ON CONFLICT DO NOTHING RETURNING id, idempotency_key``: {key: id} of the new rows.

    Django's ``bulk_create(ignore_conflicts=True)`` returns no ids, so the
    statement is compiled by Django's own insert compiler (field defaults,
    ``auto_now_add`` and value preparation as ``save()`` does them) and run here.
    """
    meta = Run._meta
    query = InsertQuery(Run, on_conflict=OnConflict.IGNORE)
    query.insert_values([field for field in meta.concrete_fields if not field.primary_key], runs)
    compiler = query.get_compiler(connection=connection)
    compiler.returning_fields = [meta.pk, meta.get_field("idempotency_key")]
    [(sql, params)] = compiler.as_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {key: pk for pk, key in cursor.fetchall()}


def _renumber(items: Sequence[tuple[object, DispatchRequest]], inserted: list[Run | None]) -> None:
    """A tick already dispatched takes no run number: close the gap it left behind it (rare)."""
    started: Counter[int] = Counter()
    for (schedule, _), run in zip(items, inserted):
        if run is None or run.state != RunState.PENDING:
            continue
        started[schedule.pk] += 1
        number = schedule.run_count + started[schedule.pk]
        if run.run_number != number:
            run.run_number = number
            Run.objects.filter(pk=run.pk).update(run_number=number)

"""The one dispatch path: every start of every kind becomes one ledger row here.

Beat, run_now, the admin, the API, webhooks and wakeups all call
``run_dispatch`` (one tick) or ``runs_dispatch_many`` (a beat batch); the
first is a batch of one. The database decides uniqueness: each batch is one
prepared ``INSERT … ON CONFLICT DO NOTHING``, and a tick whose row already exists
(``run_one_per_tick``) comes back as None, "already dispatched", not an error.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connection

from core.prepared import Prepared

from ..models import TIMELINE_TRIGGERS, Run, RunState
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
    ids = _insert_statement().insert(runs) if runs else {}
    saved: list[Run | None] = []
    for run in runs:
        # pop: a second request for the same key in one batch is "already dispatched" too.
        pk = ids.pop(run.idempotency_key, None)
        if pk is not None:
            run.pk, run._state.adding, run._state.db = pk, False, DEFAULT_DB_ALIAS
        saved.append(run if pk is not None else None)
    return saved


class _RunInsert:
    """``INSERT … SELECT … FROM unnest(one array per column) ON CONFLICT DO NOTHING RETURNING``.

    One statement for a batch of any size, with the same text for every
    size, so it is prepared once per connection: Django's insert compiler
    and PostgreSQL's planner each cost more than the insert of a beat batch
    (VALUES lists change shape with the row count and need chunking under
    PostgreSQL's 65,535 parameters). Values are taken as ``save()`` takes
    them (``pre_save``: ``auto_now_add`` included); JSON travels as text and
    is cast in the select list.
    """

    def __init__(self, fields: list) -> None:
        self.fields = fields
        arrays = ", ".join(f"%({f.attname})s::{self._array_type(f)}[]" for f in fields)
        columns = ", ".join(f.column for f in fields)
        select = ", ".join(f"u.{f.column}::jsonb" if self._is_json(f) else f"u.{f.column}" for f in fields)
        sql = (f"INSERT INTO {Run._meta.db_table} ({columns}) SELECT {select} "
               f"FROM unnest({arrays}) AS u({columns}) ON CONFLICT DO NOTHING RETURNING id, idempotency_key")
        self.statement = Prepared("tickwise_run_insert", sql)

    @staticmethod
    def _is_json(field) -> bool:
        return field.get_internal_type() == "JSONField"

    @classmethod
    def _array_type(cls, field) -> str:
        return "text" if cls._is_json(field) else field.db_type(connection)

    def _column(self, field, runs: list[Run]) -> list:
        values = [field.pre_save(run, True) for run in runs]
        if self._is_json(field):
            return [None if value is None else json.dumps(value, cls=field.encoder) for value in values]
        return values

    def insert(self, runs: list[Run]) -> dict[str, int]:
        """{idempotency key: id} of the rows this statement inserted."""
        params = {field.attname: self._column(field, runs) for field in self.fields}
        with connection.cursor() as cursor:
            self.statement.execute(cursor, params)
            return {key: pk for pk, key in cursor.fetchall()}


@functools.cache
def _insert_statement() -> _RunInsert:
    return _RunInsert([field for field in Run._meta.concrete_fields if not field.primary_key])


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

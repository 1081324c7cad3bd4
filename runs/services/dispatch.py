"""The one dispatch path: every start of every kind becomes one ledger row here.

Beat, run_now, the admin, the API, webhooks and wakeups all call
``run_dispatch`` (one tick) or ``runs_dispatch_many`` (a beat batch); the
first is a batch of one. The database decides uniqueness: each batch is one
prepared ``INSERT … ON CONFLICT DO NOTHING``, and a tick whose row already exists
(``run_one_per_tick``) comes back as None, "already dispatched", not an error.
"""
from __future__ import annotations

import hashlib
import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS

from core import internals, metrics
from schedules.models import Agent, Schedule

from .. import sql
from ..models import TIMELINE_TRIGGERS, Run, RunState, Trigger
from ..publish import Send, publish_runs_on_commit

log = logging.getLogger("tickwise.dispatch")

def idempotency_key(*, schedule_id: int, version: int, tick_at: datetime, trigger: str) -> str:
    """Derived once, stored on the row, handed to the agent on every attempt."""
    scope = "" if trigger in TIMELINE_TRIGGERS else f"|{trigger}"
    material = f"{schedule_id}|{version}|{tick_at.isoformat()}{scope}"
    return hashlib.sha256(material.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class RunPolicy:
    """How a run executes: copied onto the row, so the worker never needs a schedule."""

    timeout_seconds: int = 300
    max_attempts: int = 3
    retry_backoff_seconds: int = 10
    retry_backoff_max_seconds: int = 600
    overlap_policy: str = "skip"
    max_concurrent: int = 1
    # ``schedule`` scope on a run without a schedule: the run is its own scope.
    concurrency_scope: str = "schedule"
    session_mode: str = "new"

    @classmethod
    def of(cls, schedule: Schedule) -> RunPolicy:
        return cls(**{name: getattr(schedule, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class DispatchRequest:
    trigger: str
    tick_at: datetime
    state: str = RunState.PENDING
    skip_reason: str = ""
    missed_count: int = 0
    period_start: datetime | None = None
    period_end: datetime | None = None
    input: str = ""  # a manual run's input, instead of the rendered template
    started_by_id: int | None = None


@dataclass(frozen=True)
class Causation:
    """Who started whom: carried from run to event to run, so loops are counted (docs/events.md)."""

    chain_id: str = ""  # empty: the run starts a new chain
    parent_run_id: int | None = None
    event_depth: int = 0
    wakeup_count: int = 0
    actor_id: int | None = None  # the agent whose run emitted the trigger

    def fields(self) -> dict[str, object]:
        return {"chain_id": self.chain_id or uuid.uuid4().hex, "parent_run_id": self.parent_run_id,
                "event_depth": self.event_depth, "wakeup_count": self.wakeup_count, "actor_id": self.actor_id}


@dataclass(frozen=True)
class UnscheduledRequest:
    """A run that belongs to no schedule: its trigger's identity makes it one row.

    ``state=skipped`` with a ``skip_reason`` records a start that a loop breaker
    refused: the row is the identity's one row, so a retry of the same trigger
    stays "already dispatched".
    """

    trigger: str
    identity: str  # unique per trigger: an event's, a waitpoint's, a request's id
    input: str
    policy: RunPolicy = RunPolicy()
    session_id: str = ""  # empty: a new session
    causation: Causation = Causation()
    completion_url: str = ""
    started_by_id: int | None = None
    state: str = RunState.PENDING
    skip_reason: str = ""


def run_dispatch_unscheduled(agent: Agent, request: UnscheduledRequest, *, now: datetime,
                             publish: bool = True) -> Run | None:
    """Insert a run with no schedule, through the same statement and publish as every run.

    None when a run with the same trigger and identity already exists.
    """
    policy = request.policy
    key = unscheduled_key(request.trigger, request.identity)
    terminal = request.state != RunState.PENDING
    run = Run(agent_id=agent.pk, trigger=request.trigger, tick_at=now, idempotency_key=key,
              max_attempts=policy.max_attempts, input=request.input, lateness_ms=0,
              session_id=request.session_id or uuid.uuid4().hex, completion_url=request.completion_url,
              started_by_id=request.started_by_id, state=request.state, skip_reason=request.skip_reason,
              finished_at=now if terminal else None,
              **request.causation.fields(), **_policy_fields(policy))
    (inserted,) = _insert_new([run])
    if inserted is None:
        log.info("%s run %s already dispatched", request.trigger, request.identity)
    elif publish and not terminal:
        publish_runs_on_commit([inserted.pk], sends={inserted.pk: Send.of(request.trigger, policy.timeout_seconds)})
    return inserted


def unscheduled_key(trigger: str, identity: str) -> str:
    """The idempotency key of a run with no schedule: its trigger's identity, never a time."""
    return hashlib.sha256(f"{trigger}|{identity}".encode()).hexdigest()[:40]


def _policy_fields(policy: RunPolicy) -> dict[str, object]:
    return {name: getattr(policy, name) for name in RunPolicy.__dataclass_fields__ if name != "max_attempts"}


def run_dispatch(schedule: Schedule, request: DispatchRequest, *, now: datetime,
                 publish: bool = True) -> Run | None:
    """Insert the run for one tick and publish it after commit; None if it already exists."""
    return runs_dispatch_many([(schedule, request)], now=now, publish=publish)[0]


def runs_dispatch_many(items: Sequence[tuple[Schedule, DispatchRequest]], *, now: datetime,
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
        # Each run's time limits are its schedule's, its lane its trigger's: known here, not read back.
        sends = {run.pk: Send.of(run.trigger, schedule.timeout_seconds) for (schedule, _), run in zip(items, inserted)
                 if run is not None and run.state == RunState.PENDING}
        publish_runs_on_commit(list(sends), sends=sends)
    return inserted


def _build_runs(items: Sequence[tuple[Schedule, DispatchRequest]], *, now: datetime) -> list[Run]:
    started: Counter[int] = Counter()
    parents = _origins_kept(items)
    runs = []
    for schedule, request in items:
        if request.state == RunState.PENDING:
            started[schedule.pk] += 1
        runs.append(_build_run(schedule, request, now=now, started=started[schedule.pk], parents=parents))
    return runs


def _origins_kept(items: Sequence[tuple[Schedule, DispatchRequest]]) -> set[int]:
    """The wakeups' origin runs still in the ledger (one query, only when a wakeup is in the batch).

    Retention may have deleted an origin run before its wakeup fired: the
    wakeup keeps its chain but names no parent, or the insert (and the beat's
    whole batch) would fail on the foreign key.
    """
    origins = {schedule.origin_run_id for schedule, _ in items if schedule.is_wakeup}
    if not origins:
        return set()
    return set(Run.objects.filter(pk__in=origins).values_list("pk", flat=True))


def _build_run(schedule: Schedule, request: DispatchRequest, *, now: datetime, started: int = 1,
               parents: set[int] | None = None) -> Run:
    trigger = Trigger.WAKEUP if schedule.is_wakeup and request.trigger in TIMELINE_TRIGGERS else request.trigger
    key = idempotency_key(schedule_id=schedule.pk, version=schedule.version,
                          tick_at=request.tick_at, trigger=trigger)
    terminal = request.state != RunState.PENDING
    return Run(
        schedule=schedule, agent_id=schedule.agent_id, trigger=trigger,
        tick_at=request.tick_at, schedule_version=schedule.version, state=request.state,
        skip_reason=request.skip_reason, missed_count=request.missed_count,
        idempotency_key=key, max_attempts=schedule.max_attempts,
        run_number=0 if terminal else schedule.run_count + started,
        period_start=request.period_start, period_end=request.period_end or request.tick_at,
        lateness_ms=int((now - request.tick_at).total_seconds() * 1000),
        finished_at=now if terminal else None,
        session_id=_session_id(schedule), input=request.input, started_by_id=request.started_by_id,
        completion_url=schedule.completion_url, payload_type=schedule.payload_type,
        **_causation(schedule, trigger, parents or set()).fields(), **_policy_fields(RunPolicy.of(schedule)),
    )


def _causation(schedule: Schedule, trigger: str, parents: set[int]) -> Causation:
    """A wakeup continues the chain of the run that asked for it, one self-wakeup further; a tick starts one."""
    if trigger != Trigger.WAKEUP:
        return Causation()
    parent = schedule.origin_run_id if schedule.origin_run_id in parents else None
    return Causation(chain_id=schedule.origin_chain_id, parent_run_id=parent,
                     wakeup_count=schedule.origin_wakeup_count + 1, actor_id=schedule.origin_agent_id)


def _session_id(schedule: Schedule) -> str:
    if schedule.session_mode == "persistent" and schedule.session_id:
        return schedule.session_id
    return uuid.uuid4().hex


def _insert_new(runs: list[Run]) -> list[Run | None]:
    """Insert ``runs``; each comes back saved, or None where a unique constraint already held its row."""
    ids = sql.run_insert().insert(runs) if runs else {}
    saved: list[Run | None] = []
    for run in runs:
        # pop: a second request for the same key in one batch is "already dispatched" too.
        pk = ids.pop(run.idempotency_key, None)
        if pk is not None:
            internals.mark_saved(run, pk, DEFAULT_DB_ALIAS)
        metrics.run_inserted(run.trigger, run.state, run.skip_reason, inserted=pk is not None,
                             lateness_ms=run.lateness_ms)
        saved.append(run if pk is not None else None)
    return saved


def _renumber(items: Sequence[tuple[Schedule, DispatchRequest]], inserted: list[Run | None]) -> None:
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

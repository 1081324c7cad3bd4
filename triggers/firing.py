"""Turn due ticks into ledger rows: the work of one beat loop.

Each loop claims a bounded batch of due schedules with ``FOR UPDATE SKIP
LOCKED`` (so any number of beats share the work without waiting), inserts the
runs of the whole batch through the dispatch service in one statement,
advances every schedule in one ``UPDATE`` and commits; the execute messages
go out after the commit.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from core import metrics, timing
from core.policies import MissedPolicy, TickAction, TickDecision, missed_decide
from core.prepared import instance_from_row
from runs.models import RunState, SkipReason, Trigger
from runs.services.dispatch import DispatchRequest, runs_dispatch_many
from schedules import sql
from schedules.authz import schedules_unauthorized, unauthorized_reason
from schedules.models import Schedule
from schedules.services import schedule_pause, schedules_record_finished

from .tools.guardrails import wakeups_over_budget

log = logging.getLogger("tickwise.beat")

# Ticks looked at per schedule per loop; a longer backlog continues next loop.
TICKS_PER_LOOP = 1000


@dataclass(frozen=True)
class FireReport:
    schedules: int
    runs: int
    next_due: datetime | None


def schedules_fire_due(*, now: datetime, batch: int) -> FireReport:
    with transaction.atomic():
        due = schedules_claim_due(now=now, batch=batch)
        runs = schedules_fire(due, now=now)
    return FireReport(schedules=len(due), runs=runs, next_due=next_due_at())


def schedules_claim_due(*, now: datetime, batch: int) -> list[Schedule]:
    """Lock up to ``batch`` due schedules, earliest first, skipping those another beat holds.

    Call inside a transaction: the locks last until it ends.
    """
    with connection.cursor() as cursor:
        sql.CLAIM_DUE.execute(cursor, {"now": now, "batch": batch})
        return [instance_from_row(Schedule, sql.FIELDS, row) for row in cursor.fetchall()]


def next_due_at() -> datetime | None:
    with connection.cursor() as cursor:
        cursor.execute(sql.NEXT_DUE)
        (due,) = cursor.fetchone()
        return due


@dataclass(frozen=True)
class _Due:
    """One locked schedule's due ticks and what its missed-run policy makes of them."""

    plan: timing.Plan
    ticks: list[timing.Tick]
    requests: tuple[DispatchRequest, ...]


def schedules_fire(schedules: Sequence[Schedule], *, now: datetime) -> int:
    """Record every due tick of locked schedules and advance them; returns the rows inserted.

    One insert for all their runs, one update for all their advances; the new
    pending runs are published in one batch after the caller's commit.
    """
    plans = _plannable(schedules, now=now)
    schedules = [schedule for schedule in schedules if schedule.pk in plans]
    unauthorized = schedules_unauthorized(schedules)
    over_budget = wakeups_over_budget(schedules, now=now)
    dues = [_due(schedule, plans[schedule.pk], now=now, unauthorized=schedule.pk in unauthorized,
                 over_budget=schedule.pk in over_budget) for schedule in schedules]
    items = [(schedule, request) for schedule, due in zip(schedules, dues) for request in due.requests]
    inserted = runs_dispatch_many(items, now=now)
    started = Counter(schedule.pk for (schedule, _), run in zip(items, inserted)
                      if run is not None and run.state == RunState.PENDING)
    for schedule, due in zip(schedules, dues):
        _advance(schedule, due, started=started[schedule.pk])
    _save_advances(schedules)
    schedules_record_finished(schedules, now=now)
    for schedule in schedules:
        if schedule.pk in unauthorized:
            schedule_pause(schedule, reason=unauthorized_reason(schedule), now=now)
            log.warning("schedule %s %s", schedule.pk, unauthorized_reason(schedule))
    return sum(run is not None for run in inserted)


def _plannable(schedules: Sequence[Schedule], *, now: datetime) -> dict[int, timing.Plan]:
    """The plan of each schedule that has one; each other one is paused with why, and the batch goes on.

    A row saved before a rule tightened (a zone name now refused, say) must
    not stop every other schedule of the batch, on every beat, forever.
    """
    plans = {}
    for schedule in schedules:
        try:
            plans[schedule.pk] = schedule.plan()
        except (timing.TimingError, ValueError, TypeError) as error:
            reason = f"cannot be planned: {error}"[:200]
            schedule_pause(schedule, reason=reason, now=now)
            log.error("schedule %s %s", schedule.pk, reason)
    return plans


def schedule_fire(schedule: Schedule, *, now: datetime) -> int:
    """One locked schedule: a batch of one."""
    return schedules_fire([schedule], now=now)


def _due(schedule: Schedule, plan: timing.Plan, *, now: datetime, unauthorized: bool = False,
         over_budget: bool = False) -> _Due:
    assert schedule.next_tick_at is not None  # claimed as due: the due index has next_fire_at, set with it
    ticks = _after_completion_tick(schedule) if schedule.awaits_completion else [
        t for t in timing.ticks_between(plan, after=schedule.next_tick_at - timedelta(microseconds=1), until=now,
                                        limit=TICKS_PER_LOOP, runs_so_far=schedule.run_count) if t.fire_at <= now]
    if unauthorized:
        # Recorded, not run; the schedule is paused in the same transaction.
        return _Due(plan, ticks, tuple(DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=t.at, state=RunState.SKIPPED,
                                                       skip_reason=SkipReason.UNAUTHORIZED) for t in ticks))
    if over_budget:
        # A wakeup whose chain spent its self-wakeup budget: a row that says so, no run.
        return _Due(plan, ticks, tuple(DispatchRequest(trigger=Trigger.SCHEDULE, tick_at=t.at, state=RunState.SKIPPED,
                                                       skip_reason=SkipReason.CHAIN_BUDGET) for t in ticks))
    policy = MissedPolicy(schedule.missed_policy, timedelta(seconds=schedule.missed_grace_seconds),
                          schedule.replay_cap, schedule.last_tick_at)
    decisions = missed_decide(policy, ticks, now=now)
    metrics.ticks_missed(schedule.missed_policy, decisions)
    return _Due(plan, ticks, tuple(_request(d) for d in decisions))


def _after_completion_tick(schedule: Schedule) -> list[timing.Tick]:
    """The one due tick of an after-completion interval: the one its last run's end planned.

    Its plan's ticks are a projection from the anchor, so the planned tick
    (last finish + interval) is in general not among them: it is taken as
    stored, or it would be lost without a ledger row.
    """
    assert schedule.next_tick_at is not None and schedule.next_fire_at is not None
    local = schedule.next_tick_at.astimezone(ZoneInfo(schedule.timezone))
    return [timing.Tick(at=schedule.next_tick_at, fire_at=schedule.next_fire_at, local=local)]


_TRIGGERS = {TickAction.RUN: Trigger.SCHEDULE, TickAction.CATCH_UP: Trigger.CATCHUP, TickAction.SKIP: Trigger.SCHEDULE}


def _request(decision: TickDecision) -> DispatchRequest:
    """A policy's decision in the ledger's words."""
    skipped = decision.action is TickAction.SKIP
    return DispatchRequest(
        trigger=_TRIGGERS[decision.action], tick_at=decision.tick_at,
        state=RunState.SKIPPED if skipped else RunState.PENDING,
        skip_reason=SkipReason(decision.skip.value) if decision.skip else "",
        missed_count=decision.missed_count, period_start=decision.period_start, period_end=decision.period_end)


def _advance(schedule: Schedule, due: _Due, *, started: int) -> None:
    schedule.run_count += started
    last = due.ticks[-1].at if due.ticks else schedule.next_tick_at
    assert last is not None
    # An after-completion interval that just started a run has no next tick
    # until that run ends (services.schedule_after_run).
    awaits = schedule.awaits_completion and started > 0
    tick = None if awaits else timing.next_tick(due.plan, after=last, runs_so_far=schedule.run_count)
    schedule.last_tick_at = last
    schedule.aim_at(tick, awaiting_run=awaits)


def _save_advances(schedules: Sequence[Schedule]) -> None:
    """The advances in one ``UPDATE … FROM unnest(…)``; the rows are locked by this transaction."""
    if not schedules:
        return
    params = {name: [getattr(s, name) for s in schedules] for name in sql.ADVANCE.order}
    with connection.cursor() as cursor:
        sql.ADVANCE.execute(cursor, params)

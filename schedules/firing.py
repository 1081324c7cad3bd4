"""Turn due ticks into ledger rows: the work of one beat loop.

Each loop claims a bounded batch of due schedules with ``FOR UPDATE SKIP
LOCKED`` (so any number of beats share the work without waiting), inserts one
run per tick through the dispatch service, advances ``next_fire_at`` and
commits; the execute messages go out after the commit.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Min

from runs.models import RunState
from runs.publish import publish_runs_on_commit
from runs.services.dispatch import DispatchRequest, run_dispatch

from . import timing
from .models import Schedule
from .policies import missed_decide

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
        due = list(
            Schedule.objects.due(now=now).select_related("agent")
            .select_for_update(skip_locked=True, of=("self",)).order_by("next_fire_at")[:batch]
        )
        pending: list[int] = []
        runs = sum(schedule_fire(schedule, now=now, pending=pending) for schedule in due)
        publish_runs_on_commit(pending)  # one batch after the commit
    return FireReport(schedules=len(due), runs=runs, next_due=next_due_at())


def next_due_at() -> datetime | None:
    live = Schedule.objects.filter(paused=False, deleted_at__isnull=True, next_fire_at__isnull=False)
    return live.aggregate(at=Min("next_fire_at"))["at"]


def schedule_fire(schedule: Schedule, *, now: datetime, pending: list[int] | None = None) -> int:
    """Record every due tick of one locked schedule; returns the rows inserted.

    Ids of new pending runs are appended to ``pending`` for the caller to
    publish after its commit (without a list, each run publishes itself).
    """
    plan = schedule.plan()
    start = schedule.next_tick_at - timedelta(microseconds=1)
    ticks = [t for t in timing.ticks_between(plan, after=start, until=now, limit=TICKS_PER_LOOP,
                                             runs_so_far=schedule.run_count) if t.fire_at <= now]
    decision = missed_decide(schedule, ticks, now=now)
    started = schedule.run_count
    inserted = sum(_dispatch(schedule, request, now=now, pending=pending) for request in decision.requests)
    last = ticks[-1].at if ticks else schedule.next_tick_at
    _advance(schedule, plan, after=last, await_completion=_awaits_completion(schedule, started))
    return inserted


def _awaits_completion(schedule: Schedule, runs_before: int) -> bool:
    """An after-completion interval that just started a run waits for its outcome."""
    return (schedule.kind == "interval" and schedule.interval_mode == "after_completion"
            and schedule.run_count > runs_before)


def _dispatch(schedule: Schedule, request: DispatchRequest, *, now: datetime, pending: list[int] | None) -> int:
    run = run_dispatch(schedule, request, now=now, publish=pending is None)
    if run is None:
        return 0
    if run.state == RunState.PENDING:
        schedule.run_count += 1
        if pending is not None:
            pending.append(run.pk)
    return 1


def _advance(schedule: Schedule, plan: timing.Plan, *, after: datetime, await_completion: bool) -> None:
    # Awaiting completion: no next tick until the run ends (services.schedule_after_run).
    tick = None if await_completion else timing.next_tick(plan, after=after, runs_so_far=schedule.run_count)
    schedule.last_tick_at = after
    schedule.aim_at(tick)
    schedule.save(update_fields=["last_tick_at", "next_tick_at", "next_fire_at", "run_count"])

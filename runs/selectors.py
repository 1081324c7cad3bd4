"""Reads over the ledger: a schedule's health over a window, and the whole ledger at a glance.

Counts and percentiles are aggregates over ``run_history_idx``
(``schedule_id, tick_at DESC``): one index range scan per window, whatever
the size of the ledger.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Aggregate, Count, FloatField, Max, Q, QuerySet

from schedules.models import Schedule

from .models import FAILURE_STATES, AgentCall, Run, RunState
from .sql import SCHEDULE_PERCENTILES

# The denominator of the success rate: outcomes that say something about the
# agent. Skipped ticks (overlap, paused, DST gaps) and cancellations do not.
RATED = (RunState.SUCCEEDED, RunState.FAILED, RunState.DEAD, RunState.UNKNOWN)
FAILED = FAILURE_STATES


@dataclass(frozen=True)
class ScheduleStats:
    totals: dict[str, int]
    success_rate: float | None
    failures_by_category: dict[str, int]
    duration_p50_ms: float | None
    duration_p95_ms: float | None
    lateness_p50_ms: float | None
    lateness_p95_ms: float | None


def schedule_stats(schedule_id: int, *, since: datetime) -> ScheduleStats:
    window = Run.objects.filter(schedule_id=schedule_id, tick_at__gte=since)
    totals = {state: count for state, count in window.values_list("state").annotate(n=Count("id")).order_by()}
    failures = dict(window.filter(state__in=FAILED).values_list("error_category").annotate(n=Count("id"))
                    .order_by())
    rated = sum(totals.get(state, 0) for state in RATED)
    with connection.cursor() as cursor:
        cursor.execute(SCHEDULE_PERCENTILES, {"schedule": schedule_id, "since": since})
        d50, d95, l50, l95 = cursor.fetchone()
    return ScheduleStats(
        totals={state: totals.get(state, 0) for state in RunState.values},
        success_rate=round(totals.get(RunState.SUCCEEDED, 0) / rated, 4) if rated else None,
        failures_by_category={category or "none": count for category, count in failures.items()},
        duration_p50_ms=d50, duration_p95_ms=d95, lateness_p50_ms=l50, lateness_p95_ms=l95)


# --- the admin's control room: whole-ledger figures ------------------------------------

DAY = timedelta(hours=24)
HOUR = timedelta(hours=1)
M = TypeVar("M", Run, Schedule)


class Percentile(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expr)``, usable with ``filter=``."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, *, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
        super().__init__(expression, fraction=float(fraction), **extra)


@dataclass(frozen=True)
class LedgerOverview:
    """The ledger at a glance: the last 24 hours by state, the queues an operator must look at."""

    since: datetime
    states_24h: dict[str, int]
    lateness_p95_ms: float | None
    dead: int
    unknown: int


def ledger_overview(*, now: datetime, workspaces: QuerySet[Any] | None = None) -> LedgerOverview:
    """Two aggregate queries: the window's (by tick, so it can range over ``tick_at``) and the queues'.

    They are kept apart so each has a WHERE clause an index can serve: the
    window is a range of ticks; the queues are the dead and unknown runs of
    any age (docs/admin.md has the plans).
    """
    since = now - DAY
    runs = _in(Run.objects.all(), workspaces)
    window = runs.filter(tick_at__gte=since, tick_at__lte=now).aggregate(
        **{f"s_{state}": Count("id", filter=Q(state=state)) for state in RunState.values},
        p95=Percentile("lateness_ms", fraction=0.95, filter=Q(lateness_ms__isnull=False)))
    queues = runs.filter(state__in=(RunState.DEAD, RunState.UNKNOWN)).aggregate(
        dead=Count("id", filter=Q(state=RunState.DEAD)), unknown=Count("id", filter=Q(state=RunState.UNKNOWN)))
    return LedgerOverview(
        since=since, states_24h={state: window[f"s_{state}"] for state in RunState.values},
        lateness_p95_ms=window["p95"], dead=queues["dead"], unknown=queues["unknown"])


@dataclass(frozen=True)
class RegistryOverview:
    """Schedules by what an operator should know about them now."""

    live: int
    due_next_hour: int
    overdue: int
    paused: int
    auto_paused: int
    failing: int
    last_fired_tick_at: datetime | None  # the beat's own trace: it stamps each schedule's tick as it fires it


# ``runs.services.ended`` writes this reason when a schedule reaches its failure limit.
AUTO_PAUSED = "auto-paused"


def schedule_overview(*, now: datetime, workspaces: QuerySet[Any] | None = None) -> RegistryOverview:
    """Counts over live schedules in one aggregate query."""
    active = Q(paused=False, finished_at__isnull=True)
    # Aliases prefixed: an aggregate may not take the name of a field (``paused``).
    figures = _in(Schedule.objects.live(), workspaces).aggregate(
        n_live=Count("id"),
        n_due_next_hour=Count("id", filter=active & Q(next_fire_at__gte=now, next_fire_at__lt=now + HOUR)),
        n_overdue=Count("id", filter=active & Q(next_fire_at__lt=now)),
        n_paused=Count("id", filter=Q(paused=True)),
        n_auto_paused=Count("id", filter=Q(paused=True, paused_reason__startswith=AUTO_PAUSED)),
        n_failing=Count("id", filter=active & Q(consecutive_failures__gt=0)),
        n_last_fired_tick_at=Max("last_tick_at"),
    )
    return RegistryOverview(**{name.removeprefix("n_"): count for name, count in figures.items()})


def schedules_due_soon(*, now: datetime, workspaces: QuerySet[Any] | None = None,
                       limit: int = 10) -> QuerySet[Schedule]:
    """The next schedules to fire within the hour (and any overdue), soonest first (the due index's order)."""
    due = Q(paused=False, finished_at__isnull=True, next_fire_at__lt=now + HOUR)
    return _in(Schedule.objects.live(), workspaces).filter(due).select_related("agent").order_by("next_fire_at")[:limit]


def schedules_in_trouble(*, workspaces: QuerySet[Any] | None = None, limit: int = 10) -> QuerySet[Schedule]:
    """Failing and auto-paused schedules, the longest failure streaks first."""
    trouble = Q(consecutive_failures__gt=0) | Q(paused=True, paused_reason__startswith=AUTO_PAUSED)
    return (_in(Schedule.objects.live(), workspaces).filter(trouble).select_related("agent")
            .order_by("-consecutive_failures", "name")[:limit])


def _in(queryset: QuerySet[M], workspaces: QuerySet[Any] | None) -> QuerySet[M]:
    """Runs or schedules of the given workspaces (by their agent's), or all of them for None."""
    return queryset if workspaces is None else queryset.filter(agent__workspace__in=workspaces)


def run_attempts(run_id: int) -> list[AgentCall]:
    """The side-effect ledger of one run: every attempt that reached for the agent, in order."""
    return list(AgentCall.objects.filter(run_id=run_id).order_by("attempt"))

"""Reads over the ledger: a schedule's health over a window.

Counts and percentiles are aggregates over ``run_history_idx``
(``schedule_id, tick_at DESC``): one index range scan per window, whatever
the size of the ledger.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Count

from .models import Run, RunState
from .sql import SCHEDULE_PERCENTILES

# The denominator of the success rate: outcomes that say something about the
# agent. Skipped ticks (overlap, paused, DST gaps) and cancellations do not.
RATED = (RunState.SUCCEEDED, RunState.FAILED, RunState.DEAD, RunState.UNKNOWN)
FAILED = (RunState.FAILED, RunState.DEAD, RunState.UNKNOWN)


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

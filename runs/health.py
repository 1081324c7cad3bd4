"""How healthy a schedule (or all of an agent's schedules) has been over a window, read from the ledger.

Every figure is an aggregate over ``run_history_idx`` (``schedule_id,
tick_at DESC``): one index range per schedule and window, whatever the size
of the ledger (plans in docs/admin-queries.md). Runs are counted by the
tick they belong to (``tick_at``), so a window means "the ticks of the last
24 hours", as the list's success column and the API's stats read it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, FloatField, Func, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from schedules.models import Schedule

from .models import Run, RunState
from .selectors import FAILED, RATED, Percentile

WINDOWS: dict[str, timedelta] = {"24 h": timedelta(days=1), "7 d": timedelta(days=7), "30 d": timedelta(days=30)}


class Milliseconds(Func):
    """``finished_at - started_at`` in milliseconds (NULL while either is unset)."""

    template = "EXTRACT(EPOCH FROM (%(expressions)s)) * 1000"
    arg_joiner = " - "
    output_field = FloatField()


@dataclass(frozen=True)
class Health:
    window: str
    since: datetime
    by_state: dict[str, int]
    failures_by_category: dict[str, int]
    duration_p95_ms: float | None
    lateness_p95_ms: float | None

    @property
    def succeeded(self) -> int:
        return self.by_state.get(RunState.SUCCEEDED, 0)

    @property
    def rated(self) -> int:
        """Outcomes that say something about the agent (skips and cancellations do not)."""
        return sum(self.by_state.get(state, 0) for state in RATED)

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.rated if self.rated else None


def runs_health(schedule_ids: Sequence[int], *, window: str, now: datetime) -> Health:
    """Counts by state, failures by category, p95 duration and lateness: two aggregate queries."""
    since = now - WINDOWS[window]
    rows = Run.objects.filter(schedule_id__in=list(schedule_ids), tick_at__gte=since, tick_at__lte=now)
    figures = rows.aggregate(
        **{f"s_{state}": Count("id", filter=Q(state=state)) for state in RunState.values},
        duration=Percentile(Milliseconds(F("finished_at"), F("started_at")), fraction=0.95,
                            filter=Q(started_at__isnull=False, finished_at__isnull=False)),
        lateness=Percentile("lateness_ms", fraction=0.95, filter=Q(lateness_ms__isnull=False)))
    failures = (rows.filter(state__in=FAILED).values_list("error_category").annotate(n=Count("id"))
                .order_by("-n", "error_category"))
    return Health(window=window, since=since, by_state={s: figures[f"s_{s}"] for s in RunState.values},
                  failures_by_category={category or "uncategorised": n for category, n in failures},
                  duration_p95_ms=figures["duration"], lateness_p95_ms=figures["lateness"])


def schedules_with_recent_runs(schedules: QuerySet[Schedule], *, since: datetime) -> QuerySet[Schedule]:
    """Each schedule with its last run (id, state, tick) and its rated and succeeded runs since ``since``.

    Correlated subqueries, each an index range on ``run_history_idx``: the
    database computes them for the rows of the page only (after the sort and
    the limit), so a list page costs the same queries whatever the ledger holds.
    """
    last = Run.objects.filter(schedule=OuterRef("pk")).order_by("-tick_at", "-id")
    recent = Run.objects.filter(schedule=OuterRef("pk"), tick_at__gte=since)
    return schedules.annotate(
        last_run_id=Subquery(last.values("id")[:1]),
        last_run_state=Subquery(last.values("state")[:1]),
        last_run_tick_at=Subquery(last.values("tick_at")[:1]),
        rated_recent=_count(recent.filter(state__in=RATED)),
        succeeded_recent=_count(recent.filter(state=RunState.SUCCEEDED)),
    )


def _count(runs: QuerySet[Run]) -> Coalesce:
    counted = runs.order_by().values("schedule").annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(counted), 0)

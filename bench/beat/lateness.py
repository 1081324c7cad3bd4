"""Lateness under load: a real Tickwise beat and two real workers on the real clock.

The schedules already in ``tickwise_bench`` are re-planned from now, so about
1% of them (1,000 a minute at 100,000) come due at each minute. A beat
(``cli.beat_command()``) and two workers (``cli.worker_command()``, the
processes ``./tickwise run`` starts) run for a few minutes; then the ledger
says, for every tick of the measured minutes:

- dispatch lateness: ``lateness_ms``, the beat's clock when it began the
  batch that dispatched the tick, minus ``tick_at`` (what the ledger records);
- publish lateness: ``published_at`` (after the batch committed and its
  messages were sent; database clock) minus ``tick_at``;
- start lateness: ``started_at`` (the worker's claim, database clock) minus ``tick_at``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import percentile, process_start, processes_stop

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Lateness:
    ticks: int
    minutes: int
    dispatch_ms: tuple[float, float]  # p50, p99
    publish_ms: tuple[float, float] | None
    start_ms: tuple[float, float] | None
    not_started: int  # runs still pending when the measurement ended
    states: dict[str, int]


def replan(*, now: datetime) -> None:
    """Point every schedule at its first tick after ``now`` (one UPDATE from a VALUES list)."""
    from django.db import connection, transaction

    from core import timing
    from schedules.models import Schedule

    rows = []
    for schedule in Schedule.objects.only("id", "kind", "cron", "timezone", "dst_gap", "dst_fold", "jitter_seconds",
                                          "start_at", "end_at", "max_runs", "run_at", "interval_seconds",
                                          "interval_mode", "created_at").iterator(chunk_size=5000):
        tick = timing.next_tick(schedule.plan(), after=now)
        rows.append((schedule.id, tick.at if tick else None))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bench_plan (id bigint, at timestamptz) ON COMMIT DROP")
        cursor.executemany("INSERT INTO bench_plan VALUES (%s, %s)", rows)
        cursor.execute("UPDATE schedules_schedule s SET next_tick_at = p.at, next_fire_at = p.at, "
                       "last_tick_at = NULL FROM bench_plan p WHERE s.id = p.id")


def lateness_measure(env: dict[str, str], logs: Path, *, minutes: int, drain: float = 30.0) -> Lateness:
    from scheduler_project.cli import beat_command, worker_command

    _runs_truncate()
    procs = []
    try:
        for name in ("bench-w1", "bench-w2"):
            procs.append(process_start(worker_command(name), env=env, log=logs / f"{name}.log", ready="ready."))
        replan(now=datetime.now(UTC))
        procs.append(process_start(beat_command(), env=env, log=logs / "beat-lateness.log",
                                   ready="beat: Starting"))
        # Measure whole minutes that start once everything runs.
        first = (datetime.now(UTC) + timedelta(seconds=15)).replace(second=0, microsecond=0) + MINUTE
        last = first + (minutes - 1) * MINUTE
        time.sleep(max(0.0, (last - datetime.now(UTC)).total_seconds()) + drain)
    finally:
        processes_stop(procs)
    return _lateness(first, last, minutes)


def _runs_truncate() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE runs_run CASCADE")


def _lateness(first: datetime, last: datetime, minutes: int) -> Lateness:
    from django.db.models import Count

    from runs.models import Run

    runs = Run.objects.filter(tick_at__gte=first, tick_at__lte=last, schedule__isnull=False)
    dispatch = [float(ms) for ms in runs.values_list("lateness_ms", flat=True) if ms is not None]
    starts = _since_tick(runs, "started_at")
    publishes = _since_tick(runs, "published_at")
    states = dict(runs.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    return Lateness(
        ticks=len(dispatch), minutes=minutes,
        dispatch_ms=_p50_p99(dispatch) or (float("nan"), float("nan")),
        publish_ms=_p50_p99(publishes), start_ms=_p50_p99(starts),
        not_started=runs.filter(started_at__isnull=True, state="pending").count(), states=states)


def _since_tick(runs, field: str) -> list[float]:
    pairs = runs.filter(**{f"{field}__isnull": False}).values_list("tick_at", field)
    return [(at - tick).total_seconds() * 1000 for tick, at in pairs]


def _p50_p99(values: list[float]) -> tuple[float, float] | None:
    return (percentile(values, 0.5), percentile(values, 0.99)) if values else None

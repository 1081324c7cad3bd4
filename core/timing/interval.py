"""Interval and one-shot ticks: plain arithmetic on aware instants, no wall time involved."""
from __future__ import annotations

from datetime import datetime

from .instants import UTC
from .spec import IntervalSpec, Nominal, OnceSpec


def next_interval_tick(spec: IntervalSpec, after: datetime,
                       last_finished_at: datetime | None) -> Nominal | None:
    """The first tick after ``after``.

    Fixed rate: ``anchor + k * every`` for k >= 0. After completion, once a run
    has finished: ``last_finished_at + k * every`` for the smallest k >= 1 that
    lies after ``after`` (k > 1 only when the next tick is already overdue, e.g.
    after downtime, so the cadence resumes instead of firing in the past).
    """
    # Arithmetic in UTC: Python adds and subtracts datetimes sharing a tzinfo
    # on the wall clock, which is an hour off across a DST change.
    if spec.after_completion and last_finished_at is not None:
        base, first = last_finished_at.astimezone(UTC), 1
    else:
        base, first = spec.anchor.astimezone(UTC), 0
    k = max(first, (after.astimezone(UTC) - base) // spec.every + 1)
    try:
        at = base + k * spec.every
    except OverflowError:
        return None
    return Nominal(at, at.astimezone(spec.anchor.tzinfo))


def next_once_tick(spec: OnceSpec, after: datetime) -> Nominal | None:
    if spec.run_at <= after:  # aware comparison: always by instant
        return None
    return Nominal(spec.run_at.astimezone(UTC), spec.run_at)

"""A plan: a spec plus its window (start, end, max runs) and jitter; the public queries."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .crontimes import next_cron_tick
from .errors import TimingError
from .instants import UTC, floor_secs, require_aware
from .interval import next_interval_tick, next_once_tick
from .jitter import jitter_offset
from .spec import CronSpec, IntervalSpec, Nominal, OnceSpec, Spec, Tick

MAX_TICKS = 10_000
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Plan:
    spec: Spec
    start_at: datetime | None = None
    end_at: datetime | None = None
    max_runs: int | None = None
    jitter: timedelta = timedelta(0)
    key: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.spec, (CronSpec, IntervalSpec, OnceSpec)):
            raise TimingError(f"plan: spec must be a CronSpec, IntervalSpec or OnceSpec, "
                              f"not {type(self.spec).__name__}")
        require_aware("start_at", self.start_at)
        require_aware("end_at", self.end_at)
        if self.max_runs is not None and self.max_runs < 0:
            raise TimingError(f"plan: max_runs must not be negative, got {self.max_runs}")
        if not isinstance(self.jitter, timedelta):
            raise TimingError(f"plan: jitter must be a timedelta, not {type(self.jitter).__name__}")
        if self.jitter < timedelta(0):
            raise TimingError(f"plan: jitter must not be negative, got {self.jitter}")


def next_tick(plan: Plan, *, after: datetime, runs_so_far: int = 0,
              last_finished_at: datetime | None = None) -> Tick | None:
    """The first tick with ``at > after`` inside the plan's window, or None.

    Ticks before ``start_at`` are not produced; a tick after ``end_at`` or a plan
    that has used up ``max_runs`` gives None. ``last_finished_at`` only matters
    to after-completion intervals.
    """
    require_aware("after", after)
    require_aware("last_finished_at", last_finished_at)
    if plan.max_runs is not None and runs_so_far >= plan.max_runs:
        return None
    nominal = _next_nominal(plan.spec, _search_from(plan, after), last_finished_at)
    if nominal is None or (plan.end_at is not None and nominal.at > plan.end_at):
        return None
    fire_at = nominal.at + jitter_offset(plan.key, nominal.at, plan.jitter)
    return Tick(nominal.at, fire_at, nominal.local, nominal.note)


def ticks_between(plan: Plan, *, after: datetime, until: datetime, limit: int = 1000,
                  runs_so_far: int = 0) -> list[Tick]:
    """Every tick with ``after < at <= until``, in order, at most ``limit`` of them.

    Skipped gap ticks are listed but do not count towards ``max_runs``. For an
    after-completion interval the ticks are a projection from the anchor (as if
    every run finished instantly): the real ones depend on completions.
    """
    if not isinstance(limit, int) or not 1 <= limit <= MAX_TICKS:
        raise TimingError(f"limit must be between 1 and {MAX_TICKS}, got {limit}")
    require_aware("until", until)
    ticks: list[Tick] = []
    cursor, runs = after, runs_so_far
    while len(ticks) < limit:
        tick = next_tick(plan, after=cursor, runs_so_far=runs)
        if tick is None or tick.at > until:
            break
        ticks.append(tick)
        cursor, runs = tick.at, runs + tick.runs
    return ticks


def _search_from(plan: Plan, after: datetime) -> datetime:
    # "after start_at minus a microsecond" lets a tick exactly at start_at
    # through. In UTC: arithmetic on a zoned datetime follows the wall clock.
    if plan.start_at is not None and plan.start_at > after:
        return plan.start_at.astimezone(UTC) - _MICROSECOND
    return after.astimezone(UTC)


def _next_nominal(spec: Spec, after: datetime, last_finished_at: datetime | None) -> Nominal | None:
    if isinstance(spec, CronSpec):
        return next_cron_tick(spec, floor_secs(after))
    if isinstance(spec, IntervalSpec):
        return next_interval_tick(spec, after, last_finished_at)
    return next_once_tick(spec, after)

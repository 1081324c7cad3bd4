"""The read-only panels of a schedule's page: next fires, health, recent runs, the template's next input.

Each panel is a small value the template renders; none writes anything.
The next fires come from the engine the beat fires on and ``manage.py
preview_schedule`` prints (``core.timing.ticks_between`` over
``Schedule.plan()``), so the page, the command and the beat agree.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from core import inputs, timing
from runs.health import WINDOWS, Health, runs_health
from runs.models import Run
from runs.services.execute import render_input
from schedules.models import Schedule

from .cadence import local_and_utc
from .schedule_columns import state_badge, success_words

UPCOMING = 10
RECENT = 20
FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Fire:
    local: str
    utc: str
    note: str
    runs: bool


def upcoming_fires(schedule: Schedule, *, now: datetime, count: int = UPCOMING) -> tuple[list[Fire], str]:
    """The next ``count`` ticks (local and UTC, with DST notes), or no ticks and why not."""
    try:
        plan = schedule.plan(now=now)
        ticks = timing.ticks_between(plan, after=now, until=FAR_FUTURE, limit=count, runs_so_far=schedule.run_count)
    except (timing.TimingError, TypeError) as error:
        return [], f"This schedule cannot be planned as stored: {error}"
    if schedule.awaits_completion:
        return [], "Each tick is planned when the previous run ends (interval after completion)."
    fires = [Fire(local=_local(tick), utc=f"{tick.fire_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
                  note=dst_note(tick), runs=tick.runs) for tick in ticks]
    return fires, "" if fires else "No further ticks: the schedule has nothing left to fire."


def _local(tick: timing.Tick) -> str:
    if tick.note == timing.GAP_SKIPPED:  # a wall time that never happens has no zone abbreviation to show
        return f"{tick.local:%Y-%m-%d %H:%M:%S} (does not exist)"
    return f"{tick.local:%Y-%m-%d %H:%M:%S %Z}"


def dst_note(tick: timing.Tick) -> str:
    """"02:30 on 14 Mar skipped: DST gap", and likewise for shifts and the two passes of a fold."""
    when = f"{tick.local:%H:%M} on {tick.local.day} {tick.local:%b}"
    return {
        timing.GAP_SKIPPED: f"{when} skipped: DST gap",
        timing.GAP_SHIFTED: f"shifted to {when}: DST gap",
        timing.FOLD_FIRST: f"{when}, first of two: DST fold",
        timing.FOLD_SECOND: f"{when}, second of two: DST fold",
    }.get(tick.note or "", "")


@dataclass(frozen=True)
class HealthRow:
    window: str
    success: str
    failures: str
    duration_p95: str
    lateness_p95: str
    counts: str


def health_rows(schedule_ids: Sequence[int], *, now: datetime) -> list[HealthRow]:
    """One row per window (24 h, 7 d, 30 d), read by ``runs.health.runs_health``."""
    return [_row(runs_health(schedule_ids, window=window, now=now)) for window in WINDOWS]


def _row(health: Health) -> HealthRow:
    failures = ", ".join(f"{category}: {n}" for category, n in health.failures_by_category.items()) or "none"
    counts = ", ".join(f"{state} {n}" for state, n in health.by_state.items() if n) or "no runs"
    return HealthRow(window=health.window, success=success_words(health.succeeded, health.rated),
                     failures=failures, duration_p95=milliseconds(health.duration_p95_ms),
                     lateness_p95=milliseconds(health.lateness_p95_ms), counts=counts)


def milliseconds(value: float | None) -> str:
    """1234.5 → "1.2 s"; 87 → "87 ms"; None → "-"."""
    if value is None:
        return "-"
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"


@dataclass(frozen=True)
class RecentRun:
    link: SafeString
    state: SafeString
    trigger: str
    tick: str
    duration: str
    summary: str


def recent_runs(runs: Sequence[Run], *, zone: str | None = None) -> list[RecentRun]:
    """Rows for the runs table; times in ``zone``, else in each run's schedule's zone."""
    return [RecentRun(link=format_html('<a href="{}">{}</a>', reverse("admin:runs_run_change", args=[run.pk]),
                                       f"run {run.pk}"),
                      state=state_badge(run.state), trigger=run.get_trigger_display(),
                      tick=local_and_utc(run.tick_at, zone or _zone(run)), duration=_duration(run),
                      summary=_summary(run))
            for run in runs]


def _zone(run: Run) -> str:
    return run.schedule.timezone if run.schedule is not None else "UTC"


def schedule_recent_runs(schedule: Schedule, *, limit: int = RECENT) -> list[Run]:
    """The schedule's last runs by tick, newest first (``run_history_idx``)."""
    return list(Run.objects.filter(schedule=schedule).order_by("-tick_at", "-id")[:limit])


def _duration(run: Run) -> str:
    if run.started_at is None or run.finished_at is None:
        return "-"
    return milliseconds((run.finished_at - run.started_at).total_seconds() * 1000)


def _summary(run: Run, limit: int = 80) -> str:
    text = run.error_message or run.skip_reason or ("" if run.output is None else json.dumps(run.output))
    return text if len(text) <= limit else text[:limit] + "…"


def runs_link(schedule: Schedule) -> str:
    return f"{reverse('admin:runs_run_changelist')}?schedule__id__exact={schedule.pk}"


@dataclass(frozen=True)
class TemplatePreview:
    variables: list[str]
    rendered: str
    tick: str


def template_preview(schedule: Schedule, *, now: datetime) -> TemplatePreview | None:
    """The input the next tick would send, rendered exactly as the worker renders it."""
    tick = schedule.next_tick_at
    if tick is None or not schedule.input_template:
        return None
    draft = Run(schedule=schedule, agent_id=schedule.agent_id, tick_at=tick, run_number=schedule.run_count + 1,
                period_end=tick)
    try:
        rendered = render_input(draft)
    except (inputs.TemplateError, ValueError) as error:
        rendered = f"(cannot be rendered: {error})"
    return TemplatePreview(variables=sorted(set(inputs.template_variables(schedule.input_template))),
                           rendered=rendered, tick=local_and_utc(tick, schedule.timezone))

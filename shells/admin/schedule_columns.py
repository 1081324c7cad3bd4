"""What the schedule list shows per row: status, cadence, next fire, last run, success over 24 h.

Each column reads only the row and what ``ScheduleAdmin.get_queryset``
annotated on it (``runs.health.schedules_with_recent_runs`` and the pause's
audit entry), so the page's query count does not grow with its rows.
"""
from __future__ import annotations

from datetime import datetime

from django.db.models import Case, OuterRef, QuerySet, Subquery, When
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from runs.models import RunState
from runs.selectors import AUTO_PAUSED
from schedules.models import FinishedReason, Schedule
from workspaces.models import AuditEntry

from .cadence import countdown, local_and_utc

# Colours of a run's state, shared by the list, the change page and the agent page.
STATE_COLOURS: dict[str, str] = {
    RunState.SUCCEEDED: "#1e7e34", RunState.FAILED: "#c62828", RunState.DEAD: "#6a1b1b",
    RunState.UNKNOWN: "#e65100", RunState.RUNNING: "#1565c0", RunState.PENDING: "#546e7a",
    RunState.CANCELLED: "#757575", RunState.SKIPPED: "#9e9e9e",
}


def with_pauser(schedules: QuerySet[Schedule]) -> QuerySet[Schedule]:
    """Who paused each paused schedule: the user of its last ``pause`` audit entry, else its entry point.

    Behind ``CASE WHEN paused``: the lookup (``audit_object_idx``) runs for
    paused rows only, wherever the planner evaluates it.
    """
    pause = AuditEntry.objects.filter(object_type="schedule", object_id=OuterRef("pk"),
                                      action="pause").order_by("-at", "-id")
    who = Subquery(pause.annotate(who=Coalesce("user__username", "source")).values("who")[:1])
    return schedules.annotate(paused_by=Case(When(paused=True, then=who), default=None))


def state_badge(state: str) -> SafeString:
    label = RunState(state).label if state in RunState.values else state
    return format_html('<span class="tw-badge" style="background:{}">{}</span>',
                       STATE_COLOURS.get(state, "#555"), label)


def status(schedule: Schedule) -> SafeString:
    """Active, Paused (by whom, why), Auto-paused after N failures (red), or Finished (why)."""
    if schedule.finished_reason:
        return format_html('<span class="tw-status tw-finished">Finished</span> <small>{}</small>',
                           FinishedReason(schedule.finished_reason).label)
    if schedule.paused and schedule.paused_reason.startswith(AUTO_PAUSED):
        return format_html('<span class="tw-status tw-auto-paused">Auto-paused</span> <small>{}</small>',
                           schedule.paused_reason)
    if schedule.paused:
        who = getattr(schedule, "paused_by", None) or "someone"
        why = f": {schedule.paused_reason}" if schedule.paused_reason else ""
        return format_html('<span class="tw-status tw-paused">Paused</span> <small>by {}{}</small>', who, why)
    return SafeString('<span class="tw-status tw-active">Active</span>')


def next_fire(schedule: Schedule, *, now: datetime) -> SafeString | str:
    """In the schedule's zone with UTC beside it, and a countdown; a paused schedule shows none."""
    if schedule.paused:
        return "- (paused)"
    if schedule.next_fire_at is None:
        return "-" if schedule.finished_reason else "after the running run ends"
    return format_html("{}<br>{}", local_and_utc(schedule.next_fire_at, schedule.timezone),
                       countdown(schedule.next_fire_at, now=now))


def last_run(schedule: Schedule) -> SafeString | str:
    run_id = getattr(schedule, "last_run_id", None)
    if run_id is None:
        return "never"
    return format_html('<a href="{}">{}</a> {}', reverse("admin:runs_run_change", args=[run_id]),
                       state_badge(schedule.last_run_state),  # type: ignore[attr-defined]
                       local_and_utc(schedule.last_run_tick_at, schedule.timezone))  # type: ignore[attr-defined]


def success_words(succeeded: int, rated: int) -> str:
    """"95% · 19/20"; "-" with nothing rated (skips and cancellations say nothing about the agent)."""
    if not rated:
        return "-"
    return f"{100 * succeeded / rated:.0f}% · {succeeded}/{rated}"


def success_recent(schedule: Schedule) -> str:
    return success_words(getattr(schedule, "succeeded_recent", 0), getattr(schedule, "rated_recent", 0))

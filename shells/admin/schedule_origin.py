"""A schedule's origin on its admin page, and the Renew action for agents' recurring schedules.

Read-only: who made the schedule (a person, an API key, an agent's run) and
why. An agent's recurring schedule ends after the workspace's TTL unless a
person renews it (docs/autonomy.md); Renew is the same service as the API's.
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from schedules.models import CreatorKind, Schedule
from schedules.versioned import StaleVersion
from triggers.tools.schedule import NotRenewable, schedule_renew

from .links import run_link
from .scoping import admin_actor


def schedule_origin_text(schedule: Schedule) -> SafeString:
    """Who made the schedule and why; an agent's run links to its page (the run may be purged since)."""
    if schedule.creator_kind == CreatorKind.AGENT_RUN:
        agent = schedule.origin_agent.name if schedule.origin_agent else "a deleted agent"
        text = format_html("agent {} of {} (session {})", run_link(schedule.origin_run_id,
                                                                     f"run {schedule.origin_run_id}"),
                           agent, schedule.origin_session_id)
    elif schedule.creator_kind == CreatorKind.API_KEY:
        text = format_html("API key #{} of {}", schedule.created_by_key_id, schedule.created_by or "a removed user")
    else:
        text = format_html("a person ({})", schedule.created_by or "unknown")
    extras = [f"reason: {schedule.reason}" if schedule.reason else "",
              f"watches process {schedule.process_handle}" if schedule.process_handle else ""]
    return format_html_join("; ", "{}", [(part,) for part in [text, *[extra for extra in extras if extra]]])


@admin.action(description="Renew selected agent schedules for another period")
def renew_selected(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
    renewed, now = 0, timezone.now()
    for schedule in queryset.select_related("agent__workspace"):
        if not modeladmin.has_change_permission(request, schedule):
            modeladmin.message_user(request, f"Not yours to renew (needs the admin role): {schedule}",
                                    messages.WARNING)
            continue
        try:
            schedule_renew(schedule, now=now, actor=admin_actor(request))
        except (NotRenewable, StaleVersion) as refused:  # one schedule's refusal never stops the others
            modeladmin.message_user(request, str(refused), messages.WARNING)
            continue
        renewed += 1
    modeladmin.message_user(request, f"Renewed {renewed} schedule(s).")

"""Admin for waitpoints: where each parked run waits, how the wait ended and which run resumed it; read-only.

A waitpoint is written only by its park and its one completion (the API,
the callback URL, an event, the timer or the timeout sweep); the admin
shows it and never edits it.
"""
from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from waitpoints.models import Waitpoint

from .links import run_link
from .outbound import ReadOnly
from .scoping import WorkspaceScopedAdmin


@admin.register(Waitpoint)
class WaitpointAdmin(ReadOnly, WorkspaceScopedAdmin, admin.ModelAdmin):
    workspace_lookup = "workspace"
    list_display = ("id", "parked_run", "agent", "kind", "state", "timeout_at", "completed_at", "completed_by",
                    "resumed_by")
    list_filter = ("state", "kind")
    search_fields = ("=id", "=run__id", "event_type", "session_id")
    list_select_related = ("agent",)
    fields = ("id", "parked_run", "agent", "workspace", "session_id", "kind", "reason", "event_type", "match_shown",
              "resume_at", "timeout_at", "state", "created_at", "completed_at", "completed_by", "payload_shown",
              "resumed_by")
    readonly_fields = fields

    @admin.display(description="parked run", ordering="run")
    def parked_run(self, obj: Waitpoint) -> str:
        return run_link(obj.run_id)

    @admin.display(description="resume run")
    def resumed_by(self, obj: Waitpoint) -> str:
        return run_link(obj.resume_run_id)

    @admin.display(description="match")
    def match_shown(self, obj: Waitpoint) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.match, indent=2, sort_keys=True))

    @admin.display(description="completion payload")
    def payload_shown(self, obj: Waitpoint) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))

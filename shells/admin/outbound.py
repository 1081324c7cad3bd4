"""Admin for completion webhooks: each delivery with its attempts, read-only.

A delivery is written only by the worker that holds it (claim, POST, record);
the admin shows where each one stands and why, and never edits it.
"""
from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from runs.outbound import OutboundAttempt, OutboundDelivery

from . import links
from .scoping import WorkspaceScopedAdmin


class ReadOnly:
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class AttemptInline(ReadOnly, admin.TabularInline):
    model = OutboundAttempt
    fields = ("number", "at", "status_code", "error", "duration_ms")
    readonly_fields = fields
    extra = 0


@admin.register(OutboundDelivery)
class OutboundDeliveryAdmin(ReadOnly, WorkspaceScopedAdmin, admin.ModelAdmin):
    workspace_lookup = "run__agent__workspace"
    list_display = ("webhook_id", "run_link", "event_type", "status", "attempts", "last_status_code",
                    "next_attempt_at", "created_at")
    list_filter = ("status", "event_type")
    search_fields = ("webhook_id", "url", "=run__id")
    list_select_related = ("run",)
    fields = ("run_link", "url", "webhook_id", "event_type", "status", "attempts", "next_attempt_at",
              "claimed_until", "published_at", "last_status_code", "last_error", "created_at", "finished_at",
              "body")
    readonly_fields = fields
    inlines = [AttemptInline]

    @admin.display(description="run", ordering="run")
    def run_link(self, obj: OutboundDelivery) -> str:
        return links.run_link(obj.run_id)

    @admin.display(description="body sent")
    def body(self, obj: OutboundDelivery) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))

"""Admin for the ledger: read-only history."""
from __future__ import annotations

from django.contrib import admin

from runs.models import Run

from .scoping import WorkspaceScopedAdmin


@admin.register(Run)
class RunAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    workspace_lookup = "agent__workspace"
    list_display = ["id", "schedule", "trigger", "tick_at", "state", "skip_reason", "attempt",
                    "lateness_ms", "error_category", "finished_at"]
    list_filter = ["state", "trigger", "skip_reason", "error_category"]
    search_fields = ["idempotency_key", "schedule__name", "agent__name"]
    date_hierarchy = "tick_at"
    list_select_related = ["schedule__agent"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Run._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

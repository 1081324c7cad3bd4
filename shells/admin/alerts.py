"""Admin for alerts: the episodes, newest first, each with its deliveries; resolve closes an episode.

Scoped as the rest of the admin: staff who are not superusers see the alerts
of their workspaces (and resolve them as ``operator``); the alerts about the
whole installation (the dead-letter queue, stalled housekeeping) have no
workspace and are for superusers.
"""
from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from alerts.models import Alert, AlertDelivery
from alerts.services import alert_resolve

from .scoping import WorkspaceScopedAdmin


class AlertDeliveryInline(admin.TabularInline):
    model = AlertDelivery
    extra = 0
    can_delete = False
    fields = readonly_fields = ("notification", "channel", "target", "state", "status_code", "started_at",
                                "finished_at", "error")

    def has_add_permission(self, request: HttpRequest, obj: Alert | None = None) -> bool:
        return False


class OpenFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "Open"), ("no", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(resolved_at__isnull=self.value() == "yes")
        return queryset


@admin.register(Alert)
class AlertAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    list_display = ["title", "kind", "workspace", "opened_at", "last_raised_at", "raised_count", "notifications",
                    "resolved_at"]
    list_filter = [OpenFilter, "kind", "workspace"]
    search_fields = ["title", "key", "detail"]
    date_hierarchy = "opened_at"
    readonly_fields = ["kind", "key", "title", "detail", "workspace", "opened_at", "last_raised_at", "raised_count",
                       "notified_at", "notifications", "resolved_at", "resolved_by"]
    inlines = [AlertDeliveryInline]
    actions = ["resolve_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # alerts are raised by Tickwise, not typed in

    @admin.action(description="Resolve the selected alerts")
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        allowed = [alert.id for alert in queryset.select_related("workspace") if self.may_operate(request, alert)]
        closed = alert_resolve(allowed, by=request.user.get_username(), now=timezone.now())
        self.message_user(request, f"Resolved {closed} alert(s).", messages.SUCCESS)

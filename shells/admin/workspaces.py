"""Admin for tenancy: workspaces and members, API keys (shown once), and the audit trail (read-only)."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from workspaces.keys import KeyRefused, api_key_create, api_key_revoke
from workspaces.models import ApiKey, AuditEntry, Membership, Workspace

from .scoping import admin_actor


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["workspace", "user", "name", "expires_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["__str__", "workspace", "user", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = ["workspace", "revoked_at"]
    search_fields = ["prefix", "name", "user__username"]
    actions = ["revoke_selected"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return []
        return ["workspace", "user", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        return ["workspace", "user", "name", "expires_at"] if obj is None else self.get_readonly_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            return  # a key is immutable; revoke it and issue another
        try:
            issued = api_key_create(workspace=obj.workspace, user=obj.user, name=obj.name, expires_at=obj.expires_at,
                                    now=timezone.now(), actor=admin_actor(request))
        except KeyRefused as refused:
            self.message_user(request, str(refused), messages.ERROR)
            return
        obj.pk = issued.key.pk
        self.message_user(request, f"New key (shown once, copy it now): {issued.token}", messages.WARNING)

    @admin.action(description="Revoke selected keys")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        now = timezone.now()
        revoked = sum(api_key_revoke(key, now=now, actor=admin_actor(request)) for key in queryset)
        self.message_user(request, f"Revoked {revoked} key(s).")


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at_shown", "source", "user", "action", "object_type", "object_repr", "version_before",
                    "version_after"]
    list_filter = ["source", "action", "object_type", "workspace"]
    search_fields = ["object_repr", "detail", "user__username"]
    date_hierarchy = "at"
    fields = ["at_shown", "workspace", "user", "api_key", "source", "object_type", "object_id", "object_repr",
              "action", "version_before", "version_after", "changes", "detail"]
    readonly_fields = ["at_shown"]

    @admin.display(description="at", ordering="at")
    def at_shown(self, entry: AuditEntry) -> str:
        return f"{entry.at:%Y-%m-%d %H:%M:%S} UTC"  # stored and shown in UTC, to the second

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

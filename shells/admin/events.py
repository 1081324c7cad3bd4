"""Admin for webhook ingress: sources (with "Send test event") and the inbound events, read-only.

A source's secrets are shown as environment variable names only, with whether
each is set in this process's environment and whether it is retired: the
values never reach the database or the page. Subscriptions have their own
admin, next to routing.
"""
from __future__ import annotations

import json
import os
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from events.models import InboundEvent, Route, WebhookSource
from events.services.sources import secrets_validate, source_save
from events.services.testing import source_send_test
from events.signatures import secrets_active
from workspaces.models import Role

from .links import change_link
from .scoping import WorkspaceScopedAdmin, admin_actor, audit_table, visible_workspaces


class WebhookSourceForm(forms.ModelForm):
    class Meta:
        model = WebhookSource
        fields = ["workspace", "slug", "kind", "description", "enabled", "secrets", "tolerance_seconds",
                  "body_limit_bytes", "require_json", "signature_header", "id_header", "type_field",
                  "rate_per_minute"]

    def clean_secrets(self) -> Any:
        secrets = self.cleaned_data.get("secrets")
        problems = secrets_validate(secrets)
        if problems:
            raise ValidationError(problems)
        return secrets


@admin.register(WebhookSource)
class WebhookSourceAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    form = WebhookSourceForm
    list_display = ["slug", "kind", "workspace", "enabled", "secrets_column", "rate_per_minute", "updated_at"]
    # Related-only: a staff member's filter lists the workspaces and sources they can see, no others.
    list_filter = ["kind", "enabled", ("workspace", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["slug", "description"]
    readonly_fields = ["hook_url", "secrets_status", "version", "created_by", "created_at", "updated_at", "changes"]
    actions = ["send_test_event"]

    @admin.display(description="secrets")
    def secrets_column(self, source: WebhookSource) -> str:
        active = len(secrets_active(source, now=timezone.now()))
        return f"{active} active of {len(source.secrets or [])}"

    @admin.display(description="hook URL")
    def hook_url(self, source: WebhookSource) -> str:
        return f"{settings.TICKWISE['PUBLIC_URL'].rstrip('/')}/api/v1/hooks/{source.slug}"

    @admin.display(description="secrets in this process")
    def secrets_status(self, source: WebhookSource) -> SafeString:
        if not source.pk or not source.secrets:
            return SafeString("-")
        now = timezone.now()
        active = {s.env for s in secrets_active(source, now=now)}
        rows = format_html_join("", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (e.get("env"), "set" if os.environ.get(str(e.get("env"))) else "NOT SET",
             e.get("retire_at") or "never", "active" if e.get("env") in active else "inactive")
            for e in source.secrets if isinstance(e, dict)))
        return SafeString(f"<table><tr><th>variable</th><th>here</th><th>retires</th><th>verifies</th></tr>"
                          f"{rows}</table>")

    @admin.display(description="changes")
    def changes(self, source: WebhookSource) -> SafeString:
        return audit_table(source) if source.pk else SafeString("-")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "workspace":  # a source goes only where its creator is an admin
            kwargs["queryset"] = visible_workspaces(request, at_least=Role.ADMIN)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: WebhookSource, form: Any, change: bool) -> None:
        if not change:
            obj.created_by_id = request.user.pk
        source_save(obj, now=timezone.now(), actor=admin_actor(request))

    @admin.action(description="Send test event")
    def send_test_event(self, request: HttpRequest, queryset: QuerySet[WebhookSource]) -> None:
        public_url = settings.TICKWISE["PUBLIC_URL"]
        for source in queryset:
            if not self.may_operate(request, source):
                self.message_user(request, f"{source.slug}: your role cannot send test events", messages.ERROR)
                continue
            sent = source_send_test(source, now=timezone.now(), sent_by=request.user.get_username(),
                                    public_url=public_url)
            self.message_user(request, sent.message, messages.SUCCESS if sent.ok else messages.ERROR)


def _pretty(value: Any) -> SafeString:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


EVENT_FIELDS: tuple[str, ...] = (
    "workspace", "source", "event_id", "type", "subject", "occurred_at", "received_at", "secret_env", "posted_by",
    "outcome", "routed_at", "routing_error", "causation", "routes_table", "payload_pretty", "headers_pretty",
    "payload_hash")


@admin.register(InboundEvent)
class InboundEventAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    list_display = ["id", "received_at", "source", "type", "event_id", "outcome", "depth", "secret_env"]
    list_filter = ["outcome", ("source", admin.RelatedOnlyFieldListFilter),
                   ("workspace", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["event_id", "type", "subject", "chain_id"]
    date_hierarchy = "received_at"
    list_select_related = ["source"]
    fields = EVENT_FIELDS
    readonly_fields = EVENT_FIELDS

    @admin.display(description="payload")
    def payload_pretty(self, event: InboundEvent) -> SafeString:
        return _pretty(event.payload)

    @admin.display(description="headers")
    def headers_pretty(self, event: InboundEvent) -> SafeString:
        return _pretty(event.headers)

    @admin.display(description="causation")
    def causation(self, event: InboundEvent) -> SafeString:
        actor = change_link(event.actor, str(event.actor)) if event.actor else "-"
        parent = change_link(event.parent_run, f"run {event.parent_run_id}") if event.parent_run else "-"
        return format_html("chain <code>{}</code>, depth {}, actor {}, parent {}", event.chain_id or "-",
                           event.depth, SafeString(actor), SafeString(parent))

    @admin.display(description="routes and their runs")
    def routes_table(self, event: InboundEvent) -> SafeString:
        routes = list(Route.objects.filter(event=event).select_related("subscription", "run").order_by("id"))
        if not routes:
            return SafeString("none (see outcome)")
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (change_link(r.subscription, r.subscription.name),
             change_link(r.run, f"run {r.run_id}") if r.run else "-",
             (f"{r.run.state}" + (f": {r.run.skip_reason}" if r.run.skip_reason else "")) if r.run else "-")
            for r in routes))
        return SafeString(f"<table><tr><th>subscription</th><th>run</th><th>state</th></tr>{rows}</table>")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the retention pulse deletes events, after the window senders retry in

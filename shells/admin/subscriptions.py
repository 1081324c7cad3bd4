"""Admin for subscriptions: what routes events to agents, its breaker, and the runs its routes started.

Saves, deletes and the actions (Release the breaker, Pause, Resume) call the
same services as the API with the admin actor, so each is audited. A delete
is soft: the routes and runs stay in the ledger.
"""
from __future__ import annotations

import copy
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from events.models import Route, Subscription
from events.services import subscriptions as services
from schedules.models import Agent, ConcurrencyScope, OverlapPolicy
from workspaces.models import Role

from .links import change_link
from .scoping import WorkspaceScopedAdmin, admin_actor, audit_table, visible_workspaces

ROUTES_SHOWN = 25
RUNTIME = ["breaker_state", "held_at", "paused", "paused_reason", "version", "created_by", "created_at",
           "updated_at", "routes_table", "changes"]


class SubscriptionForm(forms.ModelForm):
    overlap_policy = forms.ChoiceField(choices=OverlapPolicy.choices, initial=OverlapPolicy.BUFFER)
    concurrency_scope = forms.ChoiceField(choices=ConcurrencyScope.choices, initial=ConcurrencyScope.SESSION)

    class Meta:
        model = Subscription
        fields = ["workspace", "agent", "name", "event_type", "match", "input_template", "session_mode",
                  "session_key", "overlap_policy", "concurrency_scope", "max_concurrent", "timeout_seconds",
                  "max_attempts", "retry_backoff_seconds", "retry_backoff_max_seconds", "completion_url",
                  "allow_self_trigger", "debounce_seconds", "breaker_limit", "breaker_window_seconds",
                  "breaker_cooldown_seconds"]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if self.errors or "agent" not in cleaned:
            return cleaned
        candidate = copy.copy(self.instance)
        for name, value in cleaned.items():
            setattr(candidate, name, value)
        try:
            services.subscription_check_routing(candidate)  # the routing rules, on the field they concern
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                self.add_error(field if field in self.fields else None, problems)
        return cleaned


@admin.register(Subscription)
class SubscriptionAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    form = SubscriptionForm
    list_display = ["name", "agent", "event_type", "session_mode", "overlap_policy", "breaker_state", "paused",
                    "updated_at"]
    list_filter = ["breaker_state", "paused", "workspace"]
    search_fields = ["name", "event_type", "agent__name"]
    list_select_related = ["agent"]
    readonly_fields = RUNTIME
    actions = ["release_selected", "pause_selected", "resume_selected"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscription]:
        return super().get_queryset(request).filter(deleted_at__isnull=True)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "agent":
            kwargs["queryset"] = Agent.objects.live().filter(
                workspace__in=visible_workspaces(request, at_least=Role.ADMIN))
        elif db_field.name == "workspace":
            kwargs["queryset"] = visible_workspaces(request, at_least=Role.ADMIN)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="routes and their runs (newest first)")
    def routes_table(self, subscription: Subscription) -> SafeString:
        routes = list(Route.objects.filter(subscription=subscription).select_related("event", "run")
                      .order_by("-id")[:ROUTES_SHOWN])
        if not routes:
            return SafeString("none yet")
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (f"{r.created_at:%Y-%m-%d %H:%M:%S} UTC", change_link(r.event, str(r.event)),
             change_link(r.run, f"run {r.run_id}") if r.run else "-",
             (r.run.state + (f": {r.run.skip_reason}" if r.run.skip_reason else "")) if r.run else "-")
            for r in routes))
        return SafeString(f"<table><tr><th>routed</th><th>event</th><th>run</th><th>state</th></tr>{rows}</table>")

    @admin.display(description="changes (audit trail)")
    def changes(self, subscription: Subscription) -> SafeString:
        return audit_table(subscription) if subscription.pk else SafeString("-")

    def save_model(self, request: HttpRequest, obj: Subscription, form: Any, change: bool) -> None:
        if not change:
            obj.created_by_id = request.user.pk
        services.subscription_save(obj, now=timezone.now(), actor=admin_actor(request))

    def delete_model(self, request: HttpRequest, obj: Subscription) -> None:
        services.subscription_delete(obj, now=timezone.now(), actor=admin_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        for subscription in queryset:
            self.delete_model(request, subscription)

    def _each_operable(self, request: HttpRequest, queryset: QuerySet[Subscription], verb: str) -> list[Subscription]:
        allowed = []
        for subscription in queryset:
            if self.may_operate(request, subscription):
                allowed.append(subscription)
            else:
                self.message_user(request, f"{subscription}: your role cannot {verb} it", messages.ERROR)
        return allowed

    @admin.action(description="Release the rate breaker (matches run again)")
    def release_selected(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        for subscription in self._each_operable(request, queryset, "release"):
            was = subscription.breaker_state
            services.subscription_release(subscription, now=timezone.now(), actor=admin_actor(request))
            self.message_user(request, f"{subscription}: breaker {was} -> closed", messages.SUCCESS)

    @admin.action(description="Pause")
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        for subscription in self._each_operable(request, queryset, "pause"):
            services.subscription_pause(subscription, reason="paused in the admin", now=timezone.now(),
                                        actor=admin_actor(request))
            self.message_user(request, f"{subscription}: paused", messages.SUCCESS)

    @admin.action(description="Resume")
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        for subscription in self._each_operable(request, queryset, "resume"):
            services.subscription_resume(subscription, now=timezone.now(), actor=admin_actor(request))
            self.message_user(request, f"{subscription}: resumed", messages.SUCCESS)

"""Admin for the registry. Actions call services, never model code."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from adapters import AdapterError, adapter_for
from runs.services.manual import run_now
from schedules import services
from schedules.models import Agent, Schedule


class AgentForm(forms.ModelForm):
    class Meta:
        model = Agent
        fields = ["name", "adapter", "config", "is_active"]

    def clean(self):
        data = super().clean()
        try:
            adapter_for(data.get("adapter", "")).validate_config(data.get("config") or {})
        except AdapterError as error:
            raise forms.ValidationError({"config": str(error)}) from None
        return data


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    form = AgentForm
    list_display = ["name", "adapter", "is_active", "updated_at"]
    list_filter = ["adapter", "is_active"]
    search_fields = ["name"]


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "cron", "timezone", "paused", "paused_reason", "next_fire_at",
                    "version", "consecutive_failures"]
    list_filter = ["kind", "paused", "agent"]
    search_fields = ["name", "agent__name"]
    readonly_fields = ["paused", "paused_reason", "next_tick_at", "next_fire_at", "last_tick_at", "run_count",
                       "version", "consecutive_failures", "created_by", "created_at", "updated_at", "deleted_at"]
    actions = ["pause_selected", "resume_selected", "run_now_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(deleted_at__isnull=True).select_related("agent")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        services.schedule_save(obj, now=timezone.now())

    def delete_model(self, request, obj):
        services.schedule_delete(obj, now=timezone.now())

    def delete_queryset(self, request, queryset):
        for schedule in queryset:
            services.schedule_delete(schedule, now=timezone.now())

    @admin.action(description="Pause selected schedules")
    def pause_selected(self, request, queryset):
        now = timezone.now()
        for schedule in queryset:
            services.schedule_pause(schedule, reason=f"paused by {request.user}", now=now)
        self.message_user(request, f"Paused {queryset.count()} schedule(s).")

    @admin.action(description="Resume selected schedules")
    def resume_selected(self, request, queryset):
        now = timezone.now()
        for schedule in queryset:
            services.schedule_resume(schedule, now=now)
        self.message_user(request, f"Resumed {queryset.count()} schedule(s).")

    @admin.action(description="Run selected schedules now")
    def run_now_selected(self, request, queryset):
        now = timezone.now()
        started = [run_now(schedule, now=now) for schedule in queryset]
        self.message_user(request, f"Started {sum(1 for run in started if run)} run(s).", messages.SUCCESS)

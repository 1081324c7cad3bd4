"""Admin for the registry. Actions call services, never model code."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone

from core import timing
from runs.services.manual import RunRefused, run_now
from schedules import services
from schedules.agents import agent_delete, agent_save
from schedules.models import Agent, Schedule
from workspaces.models import Role

from .schedule_form import ScheduleForm
from .scoping import WorkspaceScopedAdmin, admin_actor, audit_table, visible_workspaces


class AgentForm(forms.ModelForm):
    class Meta:
        model = Agent
        fields = ["workspace", "name", "adapter", "config", "is_active"]
        # The adapter's config check is Agent.clean's, run by the form's full_clean.


@admin.register(Agent)
class AgentAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    form = AgentForm
    list_display = ["name", "workspace", "adapter", "is_active", "version", "updated_at"]
    list_filter = ["workspace", "adapter", "is_active"]
    search_fields = ["name"]
    readonly_fields = ["version", "changes"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Agent]:
        return super().get_queryset(request).filter(deleted_at__isnull=True).select_related("workspace")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "workspace":
            kwargs["queryset"] = visible_workspaces(request, at_least=Role.ADMIN)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Changes (audit trail)")
    def changes(self, agent: Agent) -> str:
        return audit_table(agent) if agent.pk else "-"

    def save_model(self, request: HttpRequest, obj: Agent, form: Any, change: bool) -> None:
        agent_save(obj, now=timezone.now(), actor=admin_actor(request))

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """Deleting an agent is soft (``agent_delete``, with its schedules): the ledger keeps its runs."""
        agents = list(objs)
        return [f"{agent}: its schedules stop; its runs stay in the ledger" for agent in agents], \
            {Agent._meta.verbose_name_plural: len(agents)}, set(), []

    def delete_model(self, request: HttpRequest, obj: Agent) -> None:
        agent_delete(obj, now=timezone.now(), actor=admin_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        for agent in queryset:
            agent_delete(agent, now=timezone.now(), actor=admin_actor(request))


@admin.register(Schedule)
class ScheduleAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    workspace_lookup = "agent__workspace"
    form = ScheduleForm
    list_display = ["__str__", "kind", "cron", "timezone", "paused", "paused_reason", "next_fire",
                    "version", "consecutive_failures"]
    list_filter = ["kind", "paused", "agent"]
    search_fields = ["name", "agent__name"]
    readonly_fields = ["paused", "paused_reason", "next_tick", "next_fire", "last_tick", "run_count",
                       "version", "consecutive_failures", "finished_reason", "finished_at", "created_by",
                       "created_at", "updated_at", "deleted_at", "changes"]
    actions = ["pause_selected", "resume_selected", "run_now_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(deleted_at__isnull=True).select_related("agent")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "agent":
            kwargs["queryset"] = Agent.objects.live().filter(
                workspace__in=visible_workspaces(request, at_least=Role.ADMIN))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Changes (audit trail)")
    def changes(self, schedule: Schedule) -> str:
        return audit_table(schedule) if schedule.pk else "-"

    @admin.display(description="Next tick", ordering="next_tick_at")
    def next_tick(self, schedule: Schedule) -> str:
        return shown_in_zone(schedule.next_tick_at, schedule.timezone)

    @admin.display(description="Next fire", ordering="next_fire_at")
    def next_fire(self, schedule: Schedule) -> str:
        return shown_in_zone(schedule.next_fire_at, schedule.timezone)

    @admin.display(description="Last tick", ordering="last_tick_at")
    def last_tick(self, schedule: Schedule) -> str:
        return shown_in_zone(schedule.last_tick_at, schedule.timezone)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        expected = form.cleaned_data.get("loaded_version") if change else None
        services.schedule_save(obj, now=timezone.now(), expected_version=expected, actor=admin_actor(request))

    def changeform_view(self, request: HttpRequest, object_id: str | None = None, form_url: str = "",
                        extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # The form refuses a stale version first; a save that lands between that
        # check and the locked write ends here, rolled back by the admin's
        # transaction, instead of in a server error.
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except services.StaleVersion as error:
            self.message_user(request, f"Someone else saved this schedule while you were editing it ({error}). "
                                       f"Nothing was saved: reload the page and make your changes again.",
                              messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_deleted_objects(self, objs, request):
        """Deleting a schedule is soft (``schedule_delete``): it is marked deleted, nothing is removed.

        Django's collector would walk every run that points at the schedule
        and, since the ledger's runs cannot be deleted, refuse; the runs stay
        and keep pointing at the schedule, so there is nothing to walk.
        """
        schedules = list(objs)
        listed = [f"{schedule} (#{schedule.pk}): its {schedule.runs.count()} run(s) stay in the ledger"
                  for schedule in schedules]
        return listed, {Schedule._meta.verbose_name_plural: len(schedules)}, set(), []

    def delete_model(self, request, obj):
        services.schedule_delete(obj, now=timezone.now(), actor=admin_actor(request))

    def delete_queryset(self, request, queryset: QuerySet[Schedule]) -> None:
        now = timezone.now()
        for schedule in queryset:
            services.schedule_delete(schedule, now=now, actor=admin_actor(request))

    def _operable(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> list[Schedule]:
        """The selected schedules this user may act on; the rest are named, not touched."""
        allowed = [schedule for schedule in queryset if self.may_operate(request, schedule)]
        refused = [str(schedule) for schedule in queryset if schedule not in allowed]
        if refused:
            self.message_user(request, f"Not yours to operate (needs the operator role): {', '.join(refused)}",
                              messages.WARNING)
        return allowed

    @admin.action(description="Pause selected schedules")
    def pause_selected(self, request, queryset):
        now = timezone.now()
        for schedule in self._operable(request, queryset):
            services.schedule_pause(schedule, reason=f"paused by {request.user}", now=now, actor=admin_actor(request))
        self.message_user(request, f"Paused {queryset.count()} schedule(s).")

    @admin.action(description="Resume selected schedules")
    def resume_selected(self, request, queryset):
        now = timezone.now()
        for schedule in self._operable(request, queryset):
            services.schedule_resume(schedule, now=now, actor=admin_actor(request))
        self.message_user(request, f"Resumed {queryset.count()} schedule(s).")

    @admin.action(description="Run selected schedules now")
    def run_now_selected(self, request, queryset):
        now, started = timezone.now(), 0
        for schedule in self._operable(request, queryset):
            try:
                run_now(schedule, now=now, actor=admin_actor(request))
            except RunRefused as refused:  # one schedule's refusal never stops the others
                self.message_user(request, str(refused), messages.WARNING)
            else:
                started += 1
        self.message_user(request, f"Started {started} run(s).", messages.SUCCESS)


def shown_in_zone(moment: datetime | None, zone: str) -> str:
    """An instant as the schedule's wall clock, with its zone, and in UTC: never a bare time."""
    if moment is None:
        return "-"
    utc = f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    try:
        local = moment.astimezone(timing.validate_timezone(zone))
    except timing.TimingError:
        return utc
    return f"{local:%Y-%m-%d %H:%M:%S %Z} ({zone}) = {utc}" if zone not in ("UTC", "Etc/UTC") else utc

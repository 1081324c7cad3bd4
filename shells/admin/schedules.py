"""Admin for schedules: a list that says how each is doing, and a page that answers "when, and is it healthy".

Actions (Run now, Pause with a reason, Resume) call the same services as
the API with the admin actor, so each is audited; each message links to
what it did. Agents: ``agents.py``.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from runs.health import schedules_with_recent_runs
from runs.models import Run
from runs.services.manual import RunRefused, run_now
from schedules import services
from schedules.models import Agent, Schedule
from schedules.versioned import StaleVersion
from workspaces.models import Role

from . import agents  # noqa: F401  (registers AgentAdmin)
from . import schedule_columns as columns
from .cadence import local_and_utc, schedule_cadence
from .schedule_form import ScheduleForm
from .schedule_origin import renew_selected, schedule_origin_text
from .schedule_panels import health_rows, recent_runs, runs_link, schedule_recent_runs, template_preview, upcoming_fires
from .scoping import WorkspaceScopedAdmin, admin_actor, audit_table, visible_workspaces

RECENT_WINDOW = timedelta(days=1)
WHEN = ["kind", "cron", "interval_seconds", "interval_mode", "run_at", "timezone", "dst_gap", "dst_fold",
        "start_at", "end_at", "max_runs", "jitter_seconds"]
WHAT = ["agent", "name", "input_template", "session_mode", "loaded_version"]
POLICIES = ["missed_policy", "missed_grace_seconds", "replay_cap", "overlap_policy", "max_concurrent",
            "concurrency_scope", "failure_limit"]
RETRIES = ["timeout_seconds", "max_attempts", "retry_backoff_seconds", "retry_backoff_max_seconds"]
ADVANCED = ["completion_url"]
# What the system keeps about a schedule: shown on its page, never a field of the form.
INTERNALS = ["status_line", "next_tick", "next_fire", "last_tick", "run_count", "failures", "version",
             "finished_at", "session_id", "created_by", "origin", "created_at", "updated_at", "changes"]


@admin.register(Schedule)
class ScheduleAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    workspace_lookup = "agent__workspace"
    form = ScheduleForm
    change_form_template = "admin/schedules/schedule/change_form.html"
    list_display = ["__str__", "status_column", "cadence_column", "next_fire_column", "last_run_column",
                    "success_column"]
    list_filter = ["kind", "paused", "agent"]
    search_fields = ["name", "agent__name"]
    actions = ["pause_selected", "resume_selected", "run_now_selected", "renew_selected"]

    class Media:
        css = {"all": ["tickwise/admin.css"]}
        js = ["tickwise/countdown.js", "tickwise/schedule_form.js"]

    renew_selected = renew_selected

    def get_queryset(self, request: HttpRequest) -> QuerySet[Schedule]:
        live = super().get_queryset(request).filter(deleted_at__isnull=True).select_related("agent")
        return columns.with_pauser(schedules_with_recent_runs(live, since=timezone.now() - RECENT_WINDOW))

    def get_fieldsets(self, request: HttpRequest, obj: Schedule | None = None) -> Any:
        fieldsets: list[tuple[str, dict[str, Any]]] = [
            ("When", {"fields": WHEN}), ("What", {"fields": WHAT}),
            ("Policies", {"fields": POLICIES}), ("Retries and timeouts", {"fields": RETRIES}),
            ("Advanced", {"fields": ADVANCED + (INTERNALS if obj else []), "classes": ["collapse"]})]
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Schedule | None = None) -> list[str]:
        return INTERNALS if obj else []  # the add form shows no runtime fields

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "agent":
            kwargs["queryset"] = Agent.objects.live().filter(
                workspace__in=visible_workspaces(request, at_least=Role.ADMIN))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # --- the list's columns --------------------------------------------------

    @admin.display(description="Status", ordering="paused")
    def status_column(self, schedule: Schedule) -> str:
        return columns.status(schedule)

    @admin.display(description="Cadence")
    def cadence_column(self, schedule: Schedule) -> str:
        return schedule_cadence(schedule)

    @admin.display(description="Next fire", ordering="next_fire_at")
    def next_fire_column(self, schedule: Schedule) -> str:
        return columns.next_fire(schedule, now=timezone.now())

    @admin.display(description="Last run")
    def last_run_column(self, schedule: Schedule) -> str:
        return columns.last_run(schedule)

    @admin.display(description="Success (24 h)")
    def success_column(self, schedule: Schedule) -> str:
        return columns.success_recent(schedule)

    # --- read-only internals on the page -------------------------------------

    @admin.display(description="Status")
    def status_line(self, schedule: Schedule) -> str:
        return columns.status(schedule)

    @admin.display(description="Consecutive failures")
    def failures(self, schedule: Schedule) -> str:
        limit = f"limit {schedule.failure_limit}" if schedule.failure_limit else "no limit"
        return f"{schedule.consecutive_failures} / {limit}"

    @admin.display(description="Origin")
    def origin(self, schedule: Schedule) -> SafeString:
        return schedule_origin_text(schedule)

    @admin.display(description="Changes (audit trail)")
    def changes(self, schedule: Schedule) -> str:
        return audit_table(schedule) if schedule.pk else "-"

    @admin.display(description="Next tick", ordering="next_tick_at")
    def next_tick(self, schedule: Schedule) -> str:
        return local_and_utc(schedule.next_tick_at, schedule.timezone)

    @admin.display(description="Next fire", ordering="next_fire_at")
    def next_fire(self, schedule: Schedule) -> str:
        return columns.next_fire(schedule, now=timezone.now())

    @admin.display(description="Last tick", ordering="last_tick_at")
    def last_tick(self, schedule: Schedule) -> str:
        return local_and_utc(schedule.last_tick_at, schedule.timezone)

    # --- the change page -----------------------------------------------------

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        schedule = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if schedule is not None:
            context.update(self._panels(request, schedule))
        return super().change_view(request, object_id, form_url, context)

    def _panels(self, request: HttpRequest, schedule: Schedule) -> dict[str, Any]:
        now = timezone.now()
        fires, no_fires = upcoming_fires(schedule, now=now)
        return {
            "tw_schedule": schedule, "tw_status": columns.status(schedule),
            "tw_cadence": schedule_cadence(schedule), "tw_next_fire": columns.next_fire(schedule, now=now),
            "tw_failures": self.failures(schedule), "tw_fires": fires, "tw_no_fires": no_fires,
            "tw_health": health_rows([schedule.pk], now=now),
            "tw_runs": recent_runs(schedule_recent_runs(schedule), zone=schedule.timezone),
            "tw_runs_link": runs_link(schedule), "tw_template": template_preview(schedule, now=now),
            "tw_may_operate": self.may_operate(request, schedule),
        }

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
        except StaleVersion as error:
            self.message_user(request, f"Someone else saved this schedule while you were editing it ({error}). "
                                       f"Nothing was saved: reload the page and make your changes again.",
                              messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    # --- buttons on the page: Run now, Pause (with a reason), Resume ----------

    def get_urls(self) -> list[Any]:
        def view(name: str, handler: Any) -> Any:
            return path(f"<path:object_id>/{name}/", self.admin_site.admin_view(require_POST(handler)),
                        name=f"schedules_schedule_{name.replace('-', '_')}")
        return [view("run-now", self.run_now_view), view("pause", self.pause_view),
                view("resume", self.resume_view), *super().get_urls()]

    def _operated(self, request: HttpRequest, object_id: str) -> Schedule:
        schedule = self.get_object(request, object_id)
        if schedule is None:
            raise Http404(f"no schedule {object_id}")
        if not (self.has_view_permission(request, schedule) and self.may_operate(request, schedule)):
            raise PermissionDenied("operating a schedule needs the operator role in its workspace")
        return schedule

    def _back(self, schedule: Schedule) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:schedules_schedule_change", args=[schedule.pk]))

    def run_now_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        schedule = self._operated(request, object_id)
        try:
            run = run_now(schedule, now=timezone.now(), actor=admin_actor(request))
        except RunRefused as refused:
            self.message_user(request, str(refused), messages.WARNING)
        else:
            self.message_user(request, format_html('Started <a href="{}">run {}</a> of {}.', run_url(run),
                                                   run.pk, schedule), messages.SUCCESS)
        return self._back(schedule)

    def pause_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        schedule = self._operated(request, object_id)
        reason = " ".join(str(request.POST.get("reason", "")).split())[:200]
        services.schedule_pause(schedule, reason=reason, now=timezone.now(), actor=admin_actor(request))
        why = f" ({reason})" if reason else " (no reason given)"
        self.message_user(request, format_html('Paused <a href="{}">{}</a>{}; the audit trail records it.',
                                               reverse("admin:schedules_schedule_change", args=[schedule.pk]),
                                               schedule, why), messages.SUCCESS)
        return self._back(schedule)

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        schedule = self._operated(request, object_id)
        services.schedule_resume(schedule, now=timezone.now(), actor=admin_actor(request))
        self.message_user(request, format_html('Resumed <a href="{}">{}</a>; next fire {}.',
                                               reverse("admin:schedules_schedule_change", args=[schedule.pk]),
                                               schedule, local_and_utc(schedule.next_fire_at, schedule.timezone)),
                          messages.SUCCESS)
        return self._back(schedule)

    # --- deleting (soft) -----------------------------------------------------

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

    # --- bulk actions on the list --------------------------------------------

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

def run_url(run: Run) -> str:
    return reverse("admin:runs_run_change", args=[run.pk])

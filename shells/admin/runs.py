"""Admin for the ledger: run history that reads as history, and Replay for the dead-letter queue.

Runs are never edited here: the detail page is "View run" (no Save). Replay
is the one action, on dead and unknown runs, through the same service as
``manage.py dlq replay`` (same row, same identity, audited).
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from runs.models import Run, RunState, SkipReason
from runs.selectors import run_attempts
from runs.services.dlq import ReplayRefused, run_replay
from schedules.models import Agent
from schedules.selectors import ScheduleRefError, id_or_name, schedule_lookup
from waitpoints.models import Waitpoint

from .links import run_link
from .run_chain import RunChainFields
from .run_format import STATE_COLOURS as STATE_COLOURS
from .run_format import UNCOLOURED as UNCOLOURED
from .run_format import local_time, state_badge, utc_time
from .scoping import WorkspaceScopedAdmin, admin_actor

REPLAY_FROM = (RunState.DEAD, RunState.UNKNOWN)
SNIPPET = 60


def duration(started: datetime | None, finished: datetime | None) -> str:
    if started is None or finished is None:
        return "-"
    return span((finished - started).total_seconds())


def span(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def cut(text: str, limit: int = SNIPPET) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


class PickFilter(admin.SimpleListFilter):
    """A filter by one related row named in a text box: usable with thousands of rows (no list of choices)."""

    template = "admin/runs/run/pick_filter.html"
    parameter_name = ""
    placeholder = ""
    alias = ""  # Django's plain related lookup (``schedule__id__exact``), which other pages link with

    def __init__(self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any) -> None:
        if self.alias in params and self.parameter_name not in params:
            params[self.parameter_name] = params.pop(self.alias)  # one filter, shown in its box
        super().__init__(request, params, model, model_admin)

    def expected_parameters(self) -> list[str | None]:
        return [self.parameter_name, self.alias]

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, value)] if value else []

    def has_output(self) -> bool:
        return True  # the text box, also before anything is chosen

    def choices(self, changelist: Any) -> Any:
        others = {key: value for key, value in changelist.get_filters_params().items()
                  if key not in self.expected_parameters()}
        yield {"value": self.value() or "", "parameter": self.parameter_name, "placeholder": self.placeholder,
               "others": [(key, item) for key, values in others.items() for item in _listed(values)],
               "clear": changelist.get_query_string(remove=self.expected_parameters())}


def _listed(values: Any) -> list[str]:
    return values if isinstance(values, list) else [values]


class ScheduleFilter(PickFilter):
    title = "schedule"
    parameter_name = "schedule"
    alias = "schedule__id__exact"
    placeholder = "id or agent/name"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Run]) -> QuerySet[Run]:
        value = self.value()
        if not value:
            return queryset
        # By id a deleted schedule's runs are still found; a name means the live schedule.
        by_id = id_or_name(value)
        if by_id and "pk" in by_id:
            return queryset.filter(schedule_id=int(str(by_id["pk"])))
        try:
            return queryset.filter(schedule=schedule_lookup(value))
        except ScheduleRefError as error:
            messages.warning(request, str(error))
            return queryset.none()


class AgentFilter(PickFilter):
    title = "agent"
    parameter_name = "agent"
    alias = "agent__id__exact"
    placeholder = "id or name"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Run]) -> QuerySet[Run]:
        value = self.value()
        if not value:
            return queryset
        lookup = id_or_name(value)
        if lookup is None:
            messages.warning(request, f"agent: expected an id or a name, got '{cut(value, 40)}'")
            return queryset.none()
        return queryset.filter(agent__in=Agent.objects.filter(**lookup))


@admin.register(Run)
class RunAdmin(RunChainFields, WorkspaceScopedAdmin, admin.ModelAdmin):
    workspace_lookup = "agent__workspace"
    list_display = ["id", "state_shown", "agent_schedule", "trigger", "tick_shown", "duration_shown", "attempt",
                    "snippet"]
    list_display_links = ["id"]
    list_filter = [ScheduleFilter, AgentFilter, "state", "trigger", "error_category", "skip_reason"]
    search_fields = ["idempotency_key", "chain_id", "schedule__name", "agent__name"]
    date_hierarchy = "tick_at"
    list_select_related = ["schedule", "agent"]
    list_per_page = 50
    # Newest tick first: a LIMIT over run_tick_idx (tick_at DESC, id DESC), whatever the ledger's size.
    ordering = ["-tick_at", "-id"]
    show_full_result_count = False  # a count of the whole ledger on every page is a full scan
    fieldsets = [
        ("Summary", {"fields": ["state_label", "schedule_link", "agent_link", "trigger", "started_by_shown",
                                "tick_local", "tick_utc", "duration_shown", "attempt_shown", "error_shown"]}),
        ("Input", {"fields": ["input_shown"]}),
        ("Output", {"fields": ["output_shown"]}),
        ("Attempts (side-effect ledger)", {"fields": ["attempts_table"]}),
        ("Causation", {"fields": ["parent_link", "chain_link", "chain_tree", "event_depth", "wakeup_count", "actor",
                                  "session_id", "completion_url", "waitpoints_link", "schedules_created"]}),
        ("Internals", {"classes": ["collapse"], "fields": [
            "idempotency_key", "schedule_version", "run_number", "missed_count", "max_attempts", "not_before",
            "lease_owner", "lease_expires_at", "fencing_token", "published_at", "buffered",
            "cancel_requested_at", "created_at", "started_at", "finished_at", "lateness_ms", "period_start",
            "period_end", "timeout_seconds", "retry_backoff_seconds", "retry_backoff_max_seconds",
            "overlap_policy", "max_concurrent", "concurrency_scope", "session_mode"]}),
    ]
    DELIVERIES = ("Completion deliveries", {"fields": ["deliveries_table"]})

    def get_queryset(self, request: HttpRequest) -> QuerySet[Run]:
        return super().get_queryset(request).select_related("schedule", "agent")

    def get_fieldsets(self, request: HttpRequest, obj: Run | None = None) -> Any:
        if outbound_model() is None:
            return self.fieldsets
        return [*self.fieldsets[:5], self.DELIVERIES, *self.fieldsets[5:]]

    def get_readonly_fields(self, request: HttpRequest, obj: Run | None = None) -> list[str]:
        return [name for _, options in self.get_fieldsets(request, obj) for name in options["fields"]]

    # A run is history: viewed, replayed, never edited, added or deleted here.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    # --- the list ------------------------------------------------------------------

    @admin.display(description="state", ordering="state")
    def state_shown(self, run: Run) -> SafeString:
        if run.state != RunState.SKIPPED:
            return state_badge(run.state, short=True)
        reason = SkipReason(run.skip_reason).label if run.skip_reason in SkipReason.values else run.skip_reason
        return format_html('{} <small title="{}">{}</small>', state_badge(run.state, short=True), reason,
                           run.skip_reason)

    @admin.display(description="agent / schedule", ordering="schedule__name")
    def agent_schedule(self, run: Run) -> str:
        """AGENT/NAME, as commands and the API name a schedule, the name a link to the schedule's page."""
        if run.schedule is None:
            return format_html('<span class="tw-clip" title="{}">{}</span>', run.agent.name, run.agent.name)
        url = reverse("admin:schedules_schedule_change", args=[run.schedule_id])
        return format_html('<span class="tw-clip" title="{}/{}">{}/<a href="{}">{}</a></span>', run.agent.name,
                           run.schedule.name, run.agent.name, url, run.schedule.name)

    @admin.display(description="schedule", ordering="schedule__name")
    def schedule_link(self, run: Run) -> str:
        if run.schedule is None:
            return "-"
        url = reverse("admin:schedules_schedule_change", args=[run.schedule_id])
        return format_html('<a href="{}">{}</a>', url, run.schedule.name)

    @admin.display(description="tick", ordering="tick_at")
    def tick_shown(self, run: Run) -> str:
        return local_time(run.tick_at, run.schedule.timezone if run.schedule else None)

    @admin.display(description="duration")
    def duration_shown(self, run: Run) -> str:
        return duration(run.started_at, run.finished_at)

    @admin.display(description="error or output")
    def snippet(self, run: Run) -> str:
        if run.error_category or run.error_message:
            text = f"{run.error_category}: {run.error_message}" if run.error_category else run.error_message
            return format_html('<span class="tw-snippet" title="{}">{}</span>', run.error_message, cut(text))
        if run.output is None:
            return "-"
        shown = json.dumps(run.output, ensure_ascii=False)
        return format_html('<span class="tw-snippet" title="{}">{}</span>', shown[:500], cut(shown))

    # --- the detail page -----------------------------------------------------------

    @admin.display(description="state")
    def state_label(self, run: Run) -> SafeString:
        detail = SkipReason(run.skip_reason).label if run.skip_reason in SkipReason.values else run.skip_reason
        return state_badge(run.state, detail if run.state == RunState.SKIPPED else "")

    @admin.display(description="agent")
    def agent_link(self, run: Run) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:schedules_agent_change", args=[run.agent_id]),
                           run.agent.name)

    @admin.display(description="started by")
    def started_by_shown(self, run: Run) -> str:
        if run.started_by_id:
            return f"{run.started_by} ({run.get_trigger_display().lower()})"
        if run.actor_id:
            return f"an event from agent {run.actor}"
        return {"schedule": "the clock (beat)", "catchup": "the clock (catch-up after downtime)",
                "wakeup": "the run's own wakeup", "resume": "a completed waitpoint",
                "event": "an inbound event"}.get(run.trigger, run.get_trigger_display())

    @admin.display(description="tick (schedule's zone)")
    def tick_local(self, run: Run) -> str:
        zone = run.schedule.timezone if run.schedule else "UTC"
        return f"{local_time(run.tick_at, zone)} ({zone})"

    @admin.display(description="tick (UTC)")
    def tick_utc(self, run: Run) -> str:
        return utc_time(run.tick_at)

    @admin.display(description="attempt")
    def attempt_shown(self, run: Run) -> str:
        return f"{run.attempt} of {run.max_attempts}"

    @admin.display(description="error")
    def error_shown(self, run: Run) -> str:
        if not (run.error_category or run.error_message):
            return "-"
        return format_html("<strong>{}</strong> {}", run.get_error_category_display() or "", run.error_message)

    @admin.display(description="input (rendered)")
    def input_shown(self, run: Run) -> str:
        return format_html('<pre style="white-space:pre-wrap;margin:0">{}</pre>', run.input) if run.input else "-"

    @admin.display(description="output")
    def output_shown(self, run: Run) -> str:
        if run.output is None:
            return "-"
        pretty = json.dumps(run.output, indent=2, ensure_ascii=False, sort_keys=True)
        return format_html('<pre class="tw-output" style="white-space:pre-wrap;margin:0">{}</pre>', pretty)

    @admin.display(description="attempts")
    def attempts_table(self, run: Run) -> str:
        calls = run_attempts(run.pk)
        if not calls:
            return "no attempt reached the agent"
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (call.attempt, call.get_state_display(), utc_time(call.started_at), utc_time(call.finished_at),
             duration(call.started_at, call.finished_at), call.error_message or "-") for call in calls))
        return format_html('<table class="tw-attempts"><tr><th>attempt</th><th>state</th><th>sent</th>'
                           '<th>finished</th><th>took</th><th>error</th></tr>{}</table>', rows)

    @admin.display(description="parent run")
    def parent_link(self, run: Run) -> str:
        return run_link(run.parent_run_id, f"run {run.parent_run_id}")

    @admin.display(description="chain")
    def chain_link(self, run: Run) -> str:
        if not run.chain_id:
            return "-"
        url = f"{reverse('admin:runs_run_changelist')}?chain_id={run.chain_id}"
        return format_html('{} (<a href="{}">runs of this chain</a>)', run.chain_id, url)

    @admin.display(description="waitpoints")
    def waitpoints_link(self, run: Run) -> str:
        # A reply (``parks_run`` false) is this run's session awaiting a background run: it never parked here.
        counts = Waitpoint.objects.filter(run_id=run.pk).aggregate(
            parked=Count("id", filter=Q(parks_run=True)), replies=Count("id", filter=Q(parks_run=False)))
        said = [f"{counts['parked']} parked here" if counts["parked"] else "",
                f"{counts['replies']} background result(s) awaited by this session" if counts["replies"] else ""]
        if not any(said):
            return "none"
        url = f"{reverse('admin:waitpoints_waitpoint_changelist')}?run__id__exact={run.pk}"
        return format_html('<a href="{}">{}</a>', url, "; ".join(part for part in said if part))

    @admin.display(description="deliveries")
    def deliveries_table(self, run: Run) -> str:
        return deliveries_of(run)

    def get_urls(self) -> list[URLPattern]:
        replay = path("<path:object_id>/replay/", self.admin_site.admin_view(self.replay_view),
                      name="runs_run_replay")
        return [replay, *super().get_urls()]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        run = self.get_object(request, object_id)
        replayable = run is not None and run.state in REPLAY_FROM and self.may_operate(request, run)
        context = {"replay_url": reverse("admin:runs_run_replay", args=[object_id]) if replayable else "",
                   **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    def replay_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Replay a dead or unknown run: ``runs.services.dlq.run_replay``, the ``dlq replay`` command's service."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        run = self.get_object(request, object_id)
        if run is None:
            raise Http404(f"no run {object_id}")
        if not self.may_operate(request, run):
            raise PermissionDenied("replaying a run needs the operator role in its workspace")
        url = reverse("admin:runs_run_change", args=[run.pk])
        if run.state not in REPLAY_FROM:
            self.message_user(request, f"run {run.pk} is {run.state}: only dead and unknown runs are replayed here",
                              messages.ERROR)
            return HttpResponseRedirect(url)
        try:
            replayed = run_replay(run.pk, now=timezone.now(), actor=admin_actor(request))
        except ReplayRefused as refused:
            self.message_user(request, str(refused), messages.ERROR)
        else:
            self.message_user(request, format_html(
                'Replayed <a href="{}">run {}</a> under its own identity (key {}): it is {} again and gets '
                'fresh attempts.', url, replayed.pk, replayed.idempotency_key, replayed.state), messages.SUCCESS)
        return HttpResponseRedirect(url)


def outbound_model() -> type[Model] | None:
    """The completion deliveries' model, where this installation has one."""
    try:
        return apps.get_model("runs", "OutboundDelivery")
    except LookupError:
        return None


def deliveries_of(run: Run, limit: int = 50) -> str:
    """Each POST of the run's outcome to its completion URL, as recorded: every column of every row."""
    model = outbound_model()
    if model is None:
        return "-"
    link = next(field.name for field in model._meta.concrete_fields
                if field.is_relation and field.related_model is Run)
    # Every column but the body (shown on the delivery's own page) and the claim's bookkeeping.
    columns = [field for field in model._meta.concrete_fields
               if field.name not in ("id", link, "payload", "claimed_until", "published_at")]
    found = list(model._default_manager.filter(**{link: run}).order_by("pk")[:limit])
    if not found:
        return "none"
    head = format_html_join("", "<th>{}</th>", ((field.verbose_name,) for field in columns))
    body = format_html_join("", "<tr>{}</tr>", ((_cells(row, columns),) for row in found))
    return format_html("<table><tr>{}</tr>{}</table>", head, body)


def _cells(row: Model, columns: list[Any]) -> SafeString:
    def shown(value: Any) -> str:
        return utc_time(value) if isinstance(value, datetime) else cut(str(value), 120) if value != "" else "-"
    return format_html_join("", "<td>{}</td>", ((shown(getattr(row, field.attname)),) for field in columns))


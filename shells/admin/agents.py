"""Admin for agents: config as a form per adapter kind, with the agent's schedules, recent runs and health.

Each adapter declares the keys its config takes (``Adapter.config_fields``:
name, type, help); the form asks for those of the chosen kind (the others'
are hidden by ``tickwise/agent_form.js`` and ignored on save) and keeps any
other key in "Other keys (JSON)". The adapter's ``validate_config`` stays
the authority: its refusal is shown on the field it names.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from adapters import AdapterError, ConfigField, adapter_for
from runs.models import Run
from schedules.agents import agent_delete, agent_save
from schedules.models import AdapterKind, Agent
from workspaces.models import Role

from .cadence import schedule_cadence
from .schedule_columns import next_fire, status
from .schedule_panels import health_rows, recent_runs
from .scoping import WorkspaceScopedAdmin, admin_actor, audit_table, visible_workspaces

RECENT_RUNS = 20
# Recent runs are read within this window: its runs come from many schedules,
# and a bounded range of ``run_history_idx`` per schedule keeps the read small.
RECENT_WINDOW = timedelta(days=30)
_NAMED_KEY = re.compile(r"config\[['\"]([A-Za-z_]+)['\"]\]")


def field_name(kind: str, key: str) -> str:
    return f"cfg_{kind}_{key}"


def declared(kind: str) -> tuple[ConfigField, ...]:
    try:
        return adapter_for(kind).config_fields
    except AdapterError:
        return ()


class OptionalJSONField(forms.JSONField):
    """A JSON box that shows nothing, not ``null``, for a key that is not set."""

    def prepare_value(self, value: Any) -> Any:
        return "" if value is None else super().prepare_value(value)


def _form_field(field: ConfigField) -> forms.Field:
    help_text = f"{field.help}{' Required.' if field.required else ''}"
    common: dict[str, Any] = {"required": False, "label": field.name, "help_text": help_text}
    if field.type == "number":
        return forms.FloatField(min_value=0, **common)
    if field.type == "choice":
        return forms.ChoiceField(choices=[("", "-")] + [(c, c) for c in field.choices], **common)
    if field.type == "object":
        return OptionalJSONField(widget=forms.Textarea(attrs={"rows": 2, "cols": 60}), **common)
    if field.type == "textarea":
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), strip=False, **common)
    return forms.CharField(widget=forms.TextInput(attrs={"size": 60}), **common)


class AgentFormBase(forms.ModelForm):
    extra_config = OptionalJSONField(
        required=False, label="Other keys (JSON)", widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Config keys the fields above do not list (or whose value is null), kept as they are.")

    class Meta:
        model = Agent
        fields = ["workspace", "name", "adapter", "is_active", "completion_url"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = self.instance.config if isinstance(self.instance.config, dict) else {}
        shown = {field.name for field in declared(self.instance.adapter)}
        for field in declared(self.instance.adapter):
            value = config.get(field.name)
            if value is not None:
                self.initial[field_name(self.instance.adapter, field.name)] = value
        self.initial["extra_config"] = {k: v for k, v in config.items() if k not in shown or v is None} or None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("adapter")
        if not kind:
            return data
        self._kind = kind
        # Checked by Agent.clean (the adapter's validate_config), as at every entry point;
        # its refusal comes back through add_error, onto the field it names.
        self.instance.config = self._config(kind, data)
        return data

    def add_error(self, field: str | None, error: Any) -> None:
        if field is None and isinstance(error, ValidationError) and hasattr(error, "error_dict") \
                and "config" in error.error_dict:
            for message in error.error_dict.pop("config"):
                for text in message.messages:
                    self._config_error(getattr(self, "_kind", ""), text)
            if not error.error_dict:
                return
        super().add_error(field, error)

    def _config(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        extra = data.get("extra_config")
        if extra is not None and not isinstance(extra, dict):
            self.add_error("extra_config", "Must be a JSON object ({\"key\": value}).")
            extra = None
        config = dict(extra or {})
        for field in declared(kind):
            value = data.get(field_name(kind, field.name))
            if value in (None, "", {}):
                continue
            config[field.name] = int(value) if isinstance(value, float) and value.is_integer() else value
        return config

    def _config_error(self, kind: str, message: str) -> None:
        named = _NAMED_KEY.search(message)
        target = field_name(kind, named[1]) if named else None
        super().add_error(target if target in self.fields else None, message)


def _agent_form() -> type[AgentFormBase]:
    """The form with every adapter's declared fields (each kind's shown only when chosen)."""
    fields = {field_name(kind, field.name): _form_field(field)
              for kind in AdapterKind.values for field in declared(kind)}
    return type("AgentForm", (AgentFormBase,), fields)


AgentForm = _agent_form()


@admin.register(Agent)
class AgentAdmin(WorkspaceScopedAdmin, admin.ModelAdmin):
    form = AgentForm
    change_form_template = "admin/schedules/agent/change_form.html"
    list_display = ["name", "workspace", "adapter", "is_active", "version", "updated_at"]
    list_filter = ["workspace", "adapter", "is_active"]
    search_fields = ["name"]
    readonly_fields = ["version", "changes"]

    class Media:
        css = {"all": ["tickwise/admin.css"]}
        js = ["tickwise/countdown.js", "tickwise/agent_form.js"]

    def get_fieldsets(self, request: HttpRequest, obj: Agent | None = None) -> Any:
        sets: list[tuple[str, dict[str, Any]]] = [
            ("Agent", {"fields": ["workspace", "name", "adapter", "is_active", "completion_url"]})]
        for kind, label in AdapterKind.choices:
            names = [field_name(kind, field.name) for field in declared(kind)]
            classes = ["tw-adapter-config", f"tw-adapter-{kind}"]
            sets.append((f"Config: {label}", {"fields": names, "classes": classes,
                                              "description": "" if names else "This adapter takes no config."}))
        sets.append(("Other config", {"fields": ["extra_config"], "classes": ["collapse"]}))
        if obj is not None:
            sets.append(("History", {"fields": ["version", "changes"], "classes": ["collapse"]}))
        return sets

    def get_queryset(self, request: HttpRequest) -> QuerySet[Agent]:
        return super().get_queryset(request).filter(deleted_at__isnull=True).select_related("workspace")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "workspace":
            kwargs["queryset"] = visible_workspaces(request, at_least=Role.ADMIN)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Changes (audit trail)")
    def changes(self, agent: Agent) -> str:
        return audit_table(agent) if agent.pk else "-"

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        agent = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if agent is not None:
            context.update(agent_panels(agent))
        return super().change_view(request, object_id, form_url, context)

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


def agent_panels(agent: Agent) -> dict[str, Any]:
    """The agent's live schedules (status, cadence, next fire), its recent runs and its health."""
    now = timezone.now()
    schedules = list(agent.schedules.live().order_by("name"))
    ids = [schedule.pk for schedule in schedules]
    runs = (Run.objects.filter(schedule_id__in=ids, tick_at__gte=now - RECENT_WINDOW)
            .select_related("schedule").order_by("-tick_at", "-id")[:RECENT_RUNS])
    return {
        "tw_agent": agent,
        "tw_schedules": [(schedule, status(schedule), schedule_cadence(schedule), next_fire(schedule, now=now))
                         for schedule in schedules],
        "tw_runs": recent_runs(list(runs)),
        "tw_health": health_rows(ids, now=now),
        "tw_runs_link": f"{reverse('admin:runs_run_changelist')}?agent__id__exact={agent.pk}",
    }

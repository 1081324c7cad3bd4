"""The admin sees what the API sees: staff who are not superusers see and change only their workspaces.

Visibility follows membership (any role); changing an agent or a schedule
needs the ``admin`` role in its workspace, its actions (pause, resume, run
now) ``operator``, as over the API. Django's model permissions still apply
on top. Superusers see everything.
"""
from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from workspaces.audit import Actor
from workspaces.models import AuditEntry, Role, Workspace
from workspaces.roles import member_role, role_at_least, workspaces_of


def admin_actor(request: HttpRequest) -> Actor:
    """Who changed something through the admin, for the audit trail."""
    return Actor(source="admin", user_id=request.user.pk)


def visible_workspaces(request: HttpRequest, *, at_least: str = Role.VIEWER) -> QuerySet[Workspace]:
    if request.user.is_superuser:
        return Workspace.objects.all()
    return workspaces_of(request.user.pk or 0, at_least=at_least)


class WorkspaceScopedAdmin:
    """A ModelAdmin mixin; ``workspace_lookup`` leads from the model to its workspace."""

    workspace_lookup = "workspace"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset(request)  # type: ignore[misc]
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.workspace_lookup}__in": visible_workspaces(request)})

    def _role_on(self, request: HttpRequest, obj: Model | None, needed: str) -> bool:
        if request.user.is_superuser or obj is None:
            return True
        workspace_id = obj
        for part in self.workspace_lookup.split("__"):
            workspace_id = getattr(workspace_id, part)
        return role_at_least(member_role(request.user.pk, workspace_id.pk), needed)

    def may_operate(self, request: HttpRequest, obj: Model) -> bool:
        """Whether the user may pause, resume or run ``obj`` (``operator`` in its workspace)."""
        return self._role_on(request, obj, Role.OPERATOR)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        allowed: bool = super().has_change_permission(request, obj)  # type: ignore[misc]
        return allowed and self._role_on(request, obj, Role.ADMIN)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        allowed: bool = super().has_delete_permission(request, obj)  # type: ignore[misc]
        return allowed and self._role_on(request, obj, Role.ADMIN)


def audit_table(obj: Model, limit: int = 20) -> SafeString:
    """The object's last changes, newest first, for its admin page."""
    entries = list(AuditEntry.objects.filter(object_type=obj._meta.model_name, object_id=obj.pk)
                   .select_related("user")[:limit])
    if not entries:
        return SafeString("-")
    rows = format_html_join(
        "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} → {}</td><td>{}</td></tr>",
        ((f"{e.at:%Y-%m-%d %H:%M:%S} UTC", e.action, e.source, e.user or "-", e.version_before or "-",
          e.version_after or "-", ", ".join(e.changes) or e.detail) for e in entries))
    header = "<tr><th>when</th><th>action</th><th>via</th><th>who</th><th>version</th><th>changed</th></tr>"
    return SafeString(f"<table>{header}{rows}</table>")

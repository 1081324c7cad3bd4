"""Who may do what in a workspace: the role ladder and the membership lookups."""
from __future__ import annotations

from django.db.models import QuerySet

from .models import ROLE_ORDER, Membership, Role, Workspace


def role_at_least(role: str | None, needed: str) -> bool:
    return role is not None and ROLE_ORDER.index(Role(role)) >= ROLE_ORDER.index(Role(needed))


def member_role(user_id: int | None, workspace_id: int) -> str | None:
    """The user's role in the workspace, or None (not a member, or not an active user)."""
    if user_id is None:
        return None
    return (Membership.objects.filter(user_id=user_id, workspace_id=workspace_id, user__is_active=True)
            .values_list("role", flat=True).first())


def workspaces_of(user_id: int, *, at_least: str = Role.VIEWER) -> QuerySet[Workspace]:
    roles = ROLE_ORDER[ROLE_ORDER.index(Role(at_least)):]
    return Workspace.objects.filter(memberships__user_id=user_id, memberships__role__in=list(roles))

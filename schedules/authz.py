"""Fire-time authorisation: a schedule runs on its creator's standing, checked again at every fire.

No credential is stored for this: the creator's id is enough. When the
creator is no longer an active member of the agent's workspace with at
least ``operator`` (removed, demoted, deactivated), the tick is recorded
``skipped: unauthorized`` and the schedule paused with the reason. A
schedule with no creator (made by Tickwise itself, or before workspaces)
and one made by an active superuser are authorised.
"""
from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth import get_user_model
from django.db.models import Q

from workspaces.models import ROLE_ORDER, Membership, Role

from .models import Agent, Schedule

ALLOWED_ROLES = [role.value for role in ROLE_ORDER[ROLE_ORDER.index(Role.OPERATOR):]]


def schedules_unauthorized(schedules: Sequence[Schedule]) -> set[int]:
    """The ids of ``schedules`` whose creator may no longer start their runs; one query, none without creators."""
    owned = [s for s in schedules if s.created_by_id is not None]
    if not owned:
        return set()
    workspaces = dict(Agent.objects.filter(id__in={s.agent_id for s in owned}).values_list("id", "workspace_id"))
    users = {s.created_by_id for s in owned}
    standing = set(Membership.objects.filter(user_id__in=users, user__is_active=True, role__in=ALLOWED_ROLES)
                   .values_list("user_id", "workspace_id"))
    supers = set(get_user_model().objects.filter(Q(id__in=users), is_active=True, is_superuser=True)
                 .values_list("id", flat=True))
    return {s.pk for s in owned
            if s.created_by_id not in supers and (s.created_by_id, workspaces[s.agent_id]) not in standing}


def unauthorized_reason(schedule: Schedule) -> str:
    return f"paused: its creator (user {schedule.created_by_id}) may no longer run it in this workspace"


def creator_may_run(user_id: int | None, workspace_id: int) -> bool:
    """Whether a run made on ``user_id``'s standing may still start in ``workspace_id`` (None: Tickwise's own).

    The same rule as ``schedules_unauthorized``, for a start that has no
    schedule to pause: a waitpoint's resume, checked when the wait completes.
    """
    if user_id is None:
        return True
    users = get_user_model().objects.filter(id=user_id, is_active=True)
    if users.filter(is_superuser=True).exists():
        return True
    return Membership.objects.filter(user_id=user_id, user__is_active=True, workspace_id=workspace_id,
                                     role__in=ALLOWED_ROLES).exists()

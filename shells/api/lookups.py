"""Resolve what a URL names, inside the caller's workspace only: anything else is a 404.

An ``{agent}`` or ``{schedule}`` is an id (ASCII digits) or a name; the
lookup comes before any permission check, and an object of another
workspace is "not found", never "forbidden", so ids cannot be probed.
"""
from __future__ import annotations

import re

from runs.models import Run
from schedules.models import Agent, Schedule

from .auth import Principal
from .problems import not_found

_ID = re.compile(r"[0-9]{1,18}", re.ASCII)
_NAME = re.compile(r"[-a-zA-Z0-9_]{1,100}", re.ASCII)


def _by_ref(ref: str) -> dict[str, object] | None:
    if _ID.fullmatch(ref):
        return {"pk": int(ref)}
    if _NAME.fullmatch(ref):
        return {"name": ref}
    return None


def agent_in(principal: Principal, ref: str) -> Agent:
    where = _by_ref(ref)
    found = None if where is None else (
        Agent.objects.live().filter(workspace_id=principal.workspace_id, **where).select_related("workspace").first())
    if found is None:
        raise not_found(f"agent {ref!r}")
    return found


def schedule_in(principal: Principal, agent_ref: str, ref: str) -> Schedule:
    agent = agent_in(principal, agent_ref)
    where = _by_ref(ref)
    found = None if where is None else (
        Schedule.objects.live().filter(agent=agent, **where).select_related("agent", "created_by").first())
    if found is None:
        raise not_found(f"schedule {ref!r} of agent {agent.name!r}")
    found.agent = agent
    return found


def run_in(principal: Principal, ref: str) -> Run:
    found = None
    if _ID.fullmatch(ref):
        found = (Run.objects.filter(pk=int(ref), agent__workspace_id=principal.workspace_id)
                 .select_related("schedule", "agent", "started_by").first())
    if found is None:
        raise not_found(f"run {ref!r}")
    return found

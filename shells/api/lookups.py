"""Resolve what a URL names, inside the caller's workspace only: anything else is a 404.

An ``{agent}`` or ``{schedule}`` is an id (ASCII digits) or a name; the
lookup comes before any permission check, and an object of another
workspace is "not found", never "forbidden", so ids cannot be probed.
"""
from __future__ import annotations

from runs.models import Run
from schedules.models import Agent, Schedule
from schedules.selectors import id_or_name

from .auth import Principal
from .problems import not_found


def agent_in(principal: Principal, ref: str) -> Agent:
    where = id_or_name(ref)
    found = None if where is None else (
        Agent.objects.live().filter(workspace_id=principal.workspace_id, **where).select_related("workspace").first())
    if found is None:
        raise not_found(f"agent {ref!r}")
    return found


def schedule_in(principal: Principal, agent_ref: str, ref: str) -> Schedule:
    agent = agent_in(principal, agent_ref)
    where = id_or_name(ref)
    found = None if where is None else (
        Schedule.objects.live().filter(agent=agent, **where).select_related("agent", "created_by").first())
    if found is None:
        raise not_found(f"schedule {ref!r} of agent {agent.name!r}")
    found.agent = agent
    return found


def run_in(principal: Principal, ref: str) -> Run:
    where = id_or_name(ref)
    found = None
    if where is not None and "pk" in where:
        found = (Run.objects.filter(**where, agent__workspace_id=principal.workspace_id)
                 .select_related("schedule", "agent", "started_by").first())
    if found is None:
        raise not_found(f"run {ref!r}")
    return found

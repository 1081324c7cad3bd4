"""Background runs: start an agent's run now, detached from any schedule (docs/autonomy.md).

The run goes through the one dispatch path and is a ledger row like any
other (trigger ``manual``, started by the caller). Its id is a process
handle (``run:<id>``): schedules linked to it stop when it ends
(``triggers.tools.processes``). Its outcome goes to the completion webhook
given, and it runs in a new session or continues an existing one.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from django.db import transaction

from runs.models import Run, Trigger
from runs.services.dispatch import RunPolicy, UnscheduledRequest, run_dispatch_unscheduled
from schedules.models import Agent
from workspaces.audit import Actor, audit_record


class BackgroundRefused(ValueError):
    """A background run that is not started; the message says why."""


def background_run_start(agent: Agent, *, input: str, now: datetime, session_id: str = "",
                         completion_url: str = "", actor: Actor | None = None,
                         identity: str = "") -> Run:
    """Dispatch a run of ``agent`` now; ``session_id`` empty means a new session."""
    if not agent.is_active:
        raise BackgroundRefused(f"agent {agent.name!r} is inactive: activate it to start a run")
    workspace_runs = Run.objects.filter(agent__workspace=agent.workspace)
    if session_id and not workspace_runs.filter(session_id=session_id).exists():
        raise BackgroundRefused(f"no session {session_id!r} in this workspace; use 'new' for a new session")
    request = UnscheduledRequest(
        trigger=Trigger.MANUAL, identity=f"background|{identity or uuid.uuid4().hex}", input=input,
        policy=RunPolicy(session_mode="persistent" if session_id else "new"), session_id=session_id,
        completion_url=completion_url or agent.completion_url,
        started_by_id=actor.user_id if actor else None)
    with transaction.atomic():
        run = run_dispatch_unscheduled(agent, request, now=now)
        if run is None:
            raise BackgroundRefused("this background run was already started")
        audit_record(actor, obj=agent, action="background_run", now=now, workspace_id=agent.workspace_id,
                     version_before=agent.version, version_after=agent.version, detail=f"run {run.pk}")
    return run

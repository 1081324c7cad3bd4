"""Background runs: start an agent's run now, detached from any schedule (docs/autonomy.md).

The run goes through the one dispatch path and is a ledger row like any
other (trigger ``manual``, started by the caller). Its id is a process
handle (``run:<id>``): schedules linked to it stop when it ends
(``triggers.tools.processes``). Its outcome goes to the completion webhook
given, or to the session that started it (``ReplyTo``: that session gets a
resume run whose input is the outcome), and it runs in a new session or
continues an existing one.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from runs.models import Run, Trigger
from runs.services.dispatch import (
    Causation,
    RunPolicy,
    UnscheduledRequest,
    run_dispatch_unscheduled,
    unscheduled_key,
)
from schedules.models import Agent
from waitpoints.models import MAX_WAIT_SECONDS
from workspaces.audit import Actor, audit_record

from .waits import waitpoint_reply


class BackgroundRefused(ValueError):
    """A background run that is not started; the message says why."""


@dataclass(frozen=True)
class ReplyTo:
    """The session that receives the background run's result as a resume: the session of ``run``."""

    run: Run
    timeout_seconds: int = MAX_WAIT_SECONDS
    # Started by that run's agent (the ``background`` tool), not by a person over the API: the new
    # run is unattended (its agent is its actor) and spends one of the chain's self-wakes.
    by_agent: bool = False
    reason: str = ""


def background_run_start(agent: Agent, *, input: str, now: datetime, session_id: str = "",
                         completion_url: str = "", actor: Actor | None = None,
                         identity: str = "", reply_to: ReplyTo | None = None) -> Run:
    """Dispatch a run of ``agent`` now; ``session_id`` empty means a new session.

    With ``reply_to``, the run belongs to the chain of the run that asked
    (its parent), and its outcome comes back to that run's session as a
    resume, through a run waitpoint made in the same transaction.
    """
    if not agent.is_active:
        raise BackgroundRefused(f"agent {agent.name!r} is inactive: activate it to start a run")
    workspace_runs = Run.objects.filter(agent__workspace=agent.workspace)
    if session_id and not workspace_runs.filter(session_id=session_id).exists():
        raise BackgroundRefused(f"no session {session_id!r} in this workspace; use 'new' for a new session")
    if reply_to is not None and reply_to.run.agent.workspace_id != agent.workspace_id:
        raise BackgroundRefused(f"run {reply_to.run.pk} is not in this workspace: it cannot receive the result")
    request = UnscheduledRequest(
        trigger=Trigger.MANUAL, identity=_ledger_identity(identity or uuid.uuid4().hex), input=input,
        policy=RunPolicy(session_mode="persistent" if session_id else "new"), session_id=session_id,
        completion_url=completion_url or agent.completion_url, causation=_caused_by(reply_to),
        started_by_id=actor.user_id if actor else None)
    with transaction.atomic():
        run = run_dispatch_unscheduled(agent, request, now=now)
        if run is None:
            raise BackgroundRefused("this background run was already started")
        if reply_to is not None:
            waitpoint_reply(reply_to.run, run, timeout_seconds=reply_to.timeout_seconds, now=now,
                            reason=reply_to.reason or f"the result of background run {run.pk}")
        audit_record(actor, obj=agent, action="background_run", now=now, workspace_id=agent.workspace_id,
                     version_before=agent.version, version_after=agent.version, detail=f"run {run.pk}")
    return run


def _ledger_identity(identity: str) -> str:
    """The ledger identity of a background run (its idempotency key hashes it with the trigger)."""
    return f"background|{identity}"


def background_run_of(identity: str) -> Run | None:
    """The background run started under ``identity``, if any."""
    return Run.objects.filter(idempotency_key=unscheduled_key(Trigger.MANUAL, _ledger_identity(identity))).first()


def _caused_by(reply_to: ReplyTo | None) -> Causation:
    """A run that reports to a session is that session's run's child, in its chain."""
    if reply_to is None:
        return Causation()
    asker = reply_to.run
    return Causation(chain_id=asker.chain_id, parent_run_id=asker.pk, event_depth=asker.event_depth,
                     wakeup_count=asker.wakeup_count + reply_to.by_agent,
                     actor_id=asker.agent_id if reply_to.by_agent else None)

"""The ``schedule`` tool: an agent's run creates, lists and cancels its own schedules.

What it creates are ordinary schedules, through ``schedules.services`` (the
API's and the admin's validation and audit), with their origin recorded: the
run, its agent, session and chain, and the creator kind ``agent_run``. A
one-shot an agent asks for is a *wakeup*: it fires in the run's session and its
run continues the run's chain (``runs.services.dispatch``). Guardrails:
``guardrails``. A retried call creates nothing twice: each create has a key
(the run and the request's ``Idempotency-Key``, or else the arguments) that
the database holds unique (``schedule_unique_origin_key``).
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Min
from pydantic import BaseModel

from runs.models import Run
from schedules.models import CreatorKind, PayloadType, Schedule, ScheduleKind, SessionMode
from schedules.services import schedule_delete, schedule_save
from workspaces.audit import Actor
from workspaces.models import Workspace

from . import guardrails
from .registry import Tool, ToolContext, ToolRefused, tool_register
from .schemas import ScheduleArgs

DESCRIPTION = (
    "Create, list or cancel your own schedules. create: exactly one of `at` (ISO-8601), `in_seconds` (one-shot "
    "wakeups: 'check the deploy in 5 minutes'), `every_seconds` or `cron` + `timezone` (recurring, only when a "
    "person asked for it); a payload {type: message, text} is delivered as it is, {type: task, prompt} is run by "
    "you; `reason` is required and shown to people. Do not poll aggressively: pick a delay matched to how fast "
    "the thing you watch changes (minutes for a deploy, hours for a review), and prefer waiting on an event or a "
    "token over polling. list: this session's (scope session) or all of yours (scope agent). cancel: by id."
)


def agent_actor(run: Run) -> Actor:
    """The audit's actor for what a run's tool call changes: the agent, on behalf of the run."""
    return Actor(source="agent")


def _audit_detail(run: Run) -> str:
    return f"by run {run.pk} of agent {run.agent.name} (session {run.session_id})"


def schedule_tool(context: ToolContext, args: ScheduleArgs, *, now: datetime) -> dict[str, Any]:
    if args.action == "list":
        return schedules_list_for(context.run, scope=args.scope)
    if args.action == "cancel":
        assert args.id is not None
        return schedule_cancel_for(context.run, args.id, now=now)
    return schedule_create_for(context, args, now=now)


def schedule_create_for(context: ToolContext, args: ScheduleArgs, *, now: datetime) -> dict[str, Any]:
    run = context.run
    key = origin_key(run, args, context.idempotency_key)
    try:
        with transaction.atomic():
            space = guardrails.workspace_locked(run)
            existing = Schedule.objects.filter(origin_key=key).first()
            if existing is not None:
                return {"created": False, "schedule": schedule_view(existing)}
            schedule = _checked(space, run, args, key=key, now=now)
            schedule_save(schedule, now=now, actor=agent_actor(run), detail=_audit_detail(run))
    except IntegrityError:
        # The same request, committed by a concurrent retry of this call.
        existing = Schedule.objects.filter(origin_key=key).first()
        if existing is None:
            raise
        return {"created": False, "schedule": schedule_view(existing)}
    return {"created": True, "schedule": schedule_view(schedule)}


def origin_key(run: Run, args: BaseModel, idempotency_key: str) -> str:
    """One key per (run, request): the caller's key, or the arguments themselves (any attempt, same key).

    Relative delays are part of the arguments, not resolved instants: a retry
    a second later must find the first call's schedule, not make a second one.
    """
    request = idempotency_key or json.dumps(args.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(f"{run.pk}|{request}".encode()).hexdigest()


def _checked(space: Workspace, run: Run, args: ScheduleArgs, *, key: str, now: datetime) -> Schedule:
    """The schedule ``args`` ask for, every guardrail passed; ToolRefused with what to change otherwise."""
    schedule = _schedule(run, args, key=key, now=now)
    if schedule.kind == ScheduleKind.ONCE:
        assert schedule.run_at is not None
        guardrails.check_delay(space, schedule.run_at - now)
        over = guardrails.chain_over_budget(space, wakeups=run.wakeup_count,
                                            started_at=schedule.origin_chain_started_at, now=now)
        if over:
            raise ToolRefused(f"no more wakeups for this chain: {over}; finish the work, or ask a person")
    else:
        guardrails.check_recurring(space, run, interval=schedule.interval)
        if schedule.kind == ScheduleKind.CRON:
            schedule.full_clean()  # the cron's spacing is read from a valid expression only
            gap = schedule.shortest_gap()
            guardrails.check_recurring(space, run, interval=gap)
        # Recurring schedules an agent made end unless a person renews them.
        schedule.end_at = now + timedelta(seconds=space.agent_schedule_ttl_seconds)
    guardrails.check_quotas(space, run)
    return schedule


def _schedule(run: Run, args: ScheduleArgs, *, key: str, now: datetime) -> Schedule:
    assert args.payload is not None
    retry = args.retry
    schedule = Schedule(
        agent_id=run.agent_id, name=f"{'wakeup' if args.at or args.in_seconds else 'agent'}-{run.pk}-{key[:8]}",
        timezone=args.timezone, input_template=args.payload.body, payload_type=PayloadType(args.payload.type),
        creator_kind=CreatorKind.AGENT_RUN, origin_run_id=run.pk, origin_agent_id=run.agent_id,
        origin_session_id=run.session_id, origin_chain_id=run.chain_id, origin_wakeup_count=run.wakeup_count,
        origin_chain_started_at=chain_started(run), origin_key=key, reason=(args.reason or "").strip(),
        process_handle=args.process or "", timeout_seconds=run.timeout_seconds,
        max_attempts=retry.max_attempts if retry else 1,
        retry_backoff_seconds=retry.backoff_seconds if retry else 10,
        retry_backoff_max_seconds=max(600, retry.backoff_seconds if retry else 10),
        completion_url="" if args.destination == "session" else args.destination,
    )
    if args.session == "current":
        schedule.session_mode, schedule.session_id = SessionMode.PERSISTENT, run.session_id
    if args.at is not None or args.in_seconds is not None:
        schedule.kind = ScheduleKind.ONCE
        schedule.run_at = args.at or now + timedelta(seconds=args.in_seconds or 0)
    elif args.every_seconds is not None:
        # The first tick one interval from now: "every hour" does not mean "now, then every hour".
        schedule.kind, schedule.interval_seconds = ScheduleKind.INTERVAL, args.every_seconds
        schedule.start_at = now + timedelta(seconds=args.every_seconds)
    else:
        schedule.kind, schedule.cron = ScheduleKind.CRON, args.cron or ""
    return schedule


def chain_started(run: Run) -> datetime:
    """When the run's chain began: its oldest run still in the ledger."""
    started = Run.objects.filter(chain_id=run.chain_id).aggregate(first=Min("created_at"))["first"]
    return started or run.created_at


def schedules_list_for(run: Run, *, scope: str) -> dict[str, Any]:
    mine = Schedule.objects.live().filter(creator_kind=CreatorKind.AGENT_RUN, origin_agent_id=run.agent_id)
    if scope == "session":
        mine = mine.filter(origin_session_id=run.session_id)
    return {"schedules": [schedule_view(s) for s in mine.select_related("agent").order_by("id")[:200]]}


def schedule_cancel_for(run: Run, schedule_id: int, *, now: datetime) -> dict[str, Any]:
    """Cancel (soft-delete) a schedule this agent made; another's is "not found", as if it did not exist."""
    found = Schedule.objects.live().filter(id=schedule_id, creator_kind=CreatorKind.AGENT_RUN,
                                           origin_agent_id=run.agent_id).first()
    if found is None:
        raise ToolRefused(f"no active schedule {schedule_id} made by this agent; list shows yours",
                          slug="not-found", status=404)
    schedule_delete(found, now=now, actor=agent_actor(run), reason=f"cancelled {_audit_detail(run)}")
    return {"cancelled": schedule_id}


class NotRenewable(ValueError):
    pass


def schedule_renew(schedule: Schedule, *, now: datetime, actor: Actor) -> Schedule:
    """A person keeps an agent's recurring schedule for another period (the workspace's TTL from now)."""
    if schedule.creator_kind != CreatorKind.AGENT_RUN or schedule.kind == ScheduleKind.ONCE:
        raise NotRenewable(f"{schedule} is not a recurring schedule an agent made: it does not expire")
    schedule.end_at = now + timedelta(seconds=schedule.agent.workspace.agent_schedule_ttl_seconds)
    return schedule_save(schedule, now=now, actor=actor, expected_version=schedule.version,
                         detail=f"renewed until {_iso(schedule.end_at)}")


def schedule_view(schedule: Schedule) -> dict[str, Any]:
    """What the agent reads back about a schedule: enough to list, explain and cancel it."""
    return {
        "id": schedule.pk, "name": schedule.name, "kind": schedule.kind,
        "at": _iso(schedule.run_at), "every_seconds": schedule.interval_seconds, "cron": schedule.cron or None,
        "timezone": schedule.timezone, "payload_type": schedule.payload_type, "reason": schedule.reason,
        "session_id": schedule.session_id or None, "process": schedule.process_handle or None,
        "next_fire_at": _iso(schedule.next_fire_at), "expires_at": _iso(schedule.end_at),
        "active": schedule.deleted_at is None and not schedule.finished_reason,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


SCHEDULE_TOOL = tool_register(Tool(name="schedule", description=DESCRIPTION, model=ScheduleArgs,
                                   function=schedule_tool))

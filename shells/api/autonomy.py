"""Autonomy over the API (docs/autonomy.md): background runs, processes, origins and chains.

- ``POST /agents/{agent}/runs``: a background run, now, detached from any schedule (202); its outcome
  goes to a completion webhook, or back to the session that started it as a resume (``reply_to_run``).
- ``POST /processes/{handle}/exited``: an outside process ended; schedules linked to it are cancelled.
- ``GET /runs/{run}/chain``: a run's causation, the runs of its chain (who started whom) and the
  schedules it created.
- ``GET /agents/{agent}/schedules/{schedule}/origin``: who made a schedule (a person, a key, an agent run).
- ``POST /agents/{agent}/schedules/{schedule}/renew``: a person renews an agent's recurring schedule.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Router
from pydantic import BaseModel, Field

from runs.models import Run
from schedules.models import Schedule
from triggers.background import BackgroundRefused, ReplyTo, background_run_start
from triggers.tools.processes import process_exited
from triggers.tools.schedule import NotRenewable, schedule_renew, schedule_view
from waitpoints.models import MAX_WAIT_SECONDS

from . import schemas
from .auth import ADMIN, OPERATOR, VIEWER, principal
from .errors import saving
from .idempotency import idempotent
from .lookups import agent_in, run_in, schedule_in
from .problems import Problem, ProblemOut
from .responses import json_response, run_out

agents_router = Router(tags=["autonomy"])
processes_router = Router(tags=["autonomy"])
runs_router = Router(tags=["autonomy"])
PROBLEMS = {code: ProblemOut for code in (400, 401, 403, 404, 409, 412, 422)}
CHAIN_LIMIT = 500


class BackgroundRunIn(schemas.Strict):
    input: str = Field("", max_length=100_000, description="The run's input.")
    session: str = Field("new", max_length=64, description="'new', or the id of a session to continue.")
    completion_url: str | None = Field(None, max_length=500, description="Where the signed outcome is posted; "
                                                                         "default: the agent's.")
    reply_to_run: int | None = Field(None, ge=1, description=(
        "The run whose session receives this run's outcome as a resume (the session that started it): "
        "the new run joins that run's chain as its child."))
    reply_timeout_seconds: int = Field(MAX_WAIT_SECONDS, ge=1, le=MAX_WAIT_SECONDS, description=(
        'With reply_to_run: if the run has not ended by then, the session resumes with {"ok": false, '
        '"reason": "timeout"}.'))


class ProcessExitedIn(schemas.Strict):
    status: Literal["succeeded", "failed", "timed_out", "cancelled", "exited"] = "exited"


class ProcessExitedOut(BaseModel):
    handle: str
    cancelled: list[int]


class ScheduleBrief(BaseModel):
    model_config = {"extra": "allow"}
    id: int


class OriginOut(BaseModel):
    creator_kind: str
    created_by: str | None
    created_by_key: int | None
    origin_run: int | None
    origin_agent: str | None
    origin_session_id: str | None
    reason: str
    process: str | None
    expires_at: datetime | None


class ChainRunOut(BaseModel):
    id: int
    trigger: str
    state: str
    parent_run: int | None
    wakeup_count: int
    event_depth: int
    created_at: datetime


class ChainOut(BaseModel):
    chain_id: str
    parent_run: int | None
    wakeup_count: int
    event_depth: int
    runs: list[ChainRunOut]
    schedules_created: list[ScheduleBrief]


@agents_router.post("/{agent}/runs", response={202: schemas.RunOut, **PROBLEMS},
                    summary="Start a background run now, detached from any schedule")
def start_background_run(request: HttpRequest, agent: str, body: BackgroundRunIn) -> HttpResponse:
    caller = principal(request)
    found = agent_in(caller, agent)
    caller.require(OPERATOR)
    now = timezone.now()
    reply_to = ReplyTo(run_in(caller, str(body.reply_to_run)), body.reply_timeout_seconds) \
        if body.reply_to_run is not None else None

    def start() -> HttpResponse:
        try:
            run = background_run_start(found, input=body.input, now=now, actor=caller.actor,
                                       session_id="" if body.session == "new" else body.session,
                                       completion_url=body.completion_url or "", reply_to=reply_to,
                                       identity=request.headers.get("Idempotency-Key", ""))
        except BackgroundRefused as refused:
            raise Problem(409, "conflict", str(refused)) from None
        return json_response(run_out(run), status=202, location=f"/api/v1/runs/{run.pk}")
    return idempotent(request, caller, now=now, handler=start)


@processes_router.post("/{handle}/exited", response={200: ProcessExitedOut, **PROBLEMS},
                       summary="Report that a process ended: the schedules linked to it are cancelled")
def process_exit(request: HttpRequest, handle: str, body: ProcessExitedIn) -> HttpResponse:
    caller = principal(request)
    caller.require(OPERATOR)
    if not handle.strip() or len(handle) > 200:
        raise Problem(422, "validation-error", "handle: 1 to 200 characters")
    with transaction.atomic():
        cancelled = process_exited(caller.workspace_id, handle, reason=f"reported {body.status}",
                                   now=timezone.now(), actor=caller.actor)
    return json_response(ProcessExitedOut(handle=handle, cancelled=cancelled))


@runs_router.get("/{run}/chain", response={200: ChainOut, **PROBLEMS},
                 summary="A run's causal chain (who started whom) and the schedules it created")
def run_chain(request: HttpRequest, run: str) -> HttpResponse:
    caller = principal(request)
    found = run_in(caller, run)
    caller.require(VIEWER)
    members = (Run.objects.filter(chain_id=found.chain_id, agent__workspace_id=caller.workspace_id)
               .order_by("id")[:CHAIN_LIMIT]) if found.chain_id else [found]
    created = Schedule.objects.filter(origin_run_id=found.pk, agent__workspace_id=caller.workspace_id)
    return json_response(ChainOut(
        chain_id=found.chain_id, parent_run=found.parent_run_id, wakeup_count=found.wakeup_count,
        event_depth=found.event_depth,
        runs=[ChainRunOut(id=r.pk, trigger=r.trigger, state=r.state, parent_run=r.parent_run_id,
                          wakeup_count=r.wakeup_count, event_depth=r.event_depth, created_at=r.created_at)
              for r in members],
        schedules_created=[ScheduleBrief(**schedule_view(s)) for s in created.order_by("id")]))


def origin_out(schedule: Schedule) -> OriginOut:
    return OriginOut(
        creator_kind=schedule.creator_kind,
        created_by=schedule.created_by.get_username() if schedule.created_by else None,
        created_by_key=schedule.created_by_key_id, origin_run=schedule.origin_run_id,
        origin_agent=schedule.origin_agent.name if schedule.origin_agent else None,
        origin_session_id=schedule.origin_session_id or None, reason=schedule.reason,
        process=schedule.process_handle or None, expires_at=schedule.end_at)


@agents_router.get("/{agent}/schedules/{schedule}/origin", response={200: OriginOut, **PROBLEMS},
                   summary="Who made a schedule: a person, an API key, or an agent run")
def get_schedule_origin(request: HttpRequest, agent: str, schedule: str) -> HttpResponse:
    caller = principal(request)
    found = schedule_in(caller, agent, schedule)
    caller.require(VIEWER)
    return json_response(origin_out(found))


@agents_router.post("/{agent}/schedules/{schedule}/renew", response={200: OriginOut, **PROBLEMS},
                    summary="Renew an agent's recurring schedule for another period")
def renew_schedule(request: HttpRequest, agent: str, schedule: str) -> HttpResponse:
    caller = principal(request)
    found = schedule_in(caller, agent, schedule)
    caller.require(ADMIN)
    with saving():
        try:
            schedule_renew(found, now=timezone.now(), actor=caller.actor)
        except NotRenewable as refused:
            raise Problem(409, "conflict", str(refused)) from None
    return json_response(origin_out(found))

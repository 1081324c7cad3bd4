"""``/runs``: the ledger of the caller's workspace, one run with its attempts, cancel and replay."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Query, Router
from pydantic import Field

from runs.models import Run, RunState, Trigger
from runs.services.cancel import run_cancel
from runs.services.dlq import run_replay

from . import schemas
from .auth import OPERATOR, VIEWER, principal
from .errors import saving
from .lookups import run_in
from .pagination import MAX_CURSOR, page
from .problems import Problem, ProblemOut
from .responses import json_response, run_detail_out, run_out

router = Router(tags=["runs"])
PROBLEMS = {code: ProblemOut for code in (400, 401, 403, 404, 409, 422)}
REPLAYABLE = (RunState.DEAD, RunState.UNKNOWN)


class RunsQuery(schemas.Strict):
    cursor: str | None = Field(None, max_length=MAX_CURSOR)
    limit: int = Field(50, ge=1, le=200)
    state: RunState | None = None
    trigger: Trigger | None = None
    agent: schemas.Text | None = Field(None, max_length=100)


@router.get("", response={200: schemas.Page[schemas.RunOut], **PROBLEMS}, summary="Runs, newest first")
def list_runs(request: HttpRequest, query: Query[RunsQuery]) -> HttpResponse:
    caller = principal(request)
    caller.require(VIEWER)
    runs = Run.objects.filter(agent__workspace_id=caller.workspace_id).select_related("schedule", "agent",
                                                                                      "started_by")
    if query.state:
        runs = runs.filter(state=query.state)
    if query.trigger:
        runs = runs.filter(trigger=query.trigger)
    if query.agent:
        runs = runs.filter(agent__name=query.agent)
    rows, cursor = page(runs, cursor=query.cursor, limit=query.limit, newest_first=True)
    return json_response(schemas.Page[schemas.RunOut](items=[run_out(r) for r in rows], next_cursor=cursor))


@router.get("/{run}", response={200: schemas.RunDetailOut, **PROBLEMS}, summary="A run with its attempts")
def get_run(request: HttpRequest, run: str) -> HttpResponse:
    caller = principal(request)
    found = run_in(caller, run)
    caller.require(VIEWER)
    return json_response(run_detail_out(found))


@router.post("/{run}/cancel", response={200: schemas.RunDetailOut, **PROBLEMS},
             summary="Cancel a pending run, or ask a running one to stop")
def cancel_run(request: HttpRequest, run: str) -> HttpResponse:
    caller = principal(request)
    found = run_in(caller, run)
    caller.require(OPERATOR)
    if not run_cancel(found, now=timezone.now(), actor=caller.actor):
        raise Problem(409, "conflict", f"run {found.pk} is {found.state}; only pending or running runs cancel")
    return json_response(run_detail_out(run_in(caller, run)))


@router.post("/{run}/replay", response={202: schemas.RunDetailOut, **PROBLEMS},
             summary="Replay a dead or unknown run under its original identity")
def replay_run(request: HttpRequest, run: str) -> HttpResponse:
    caller = principal(request)
    found = run_in(caller, run)
    caller.require(OPERATOR)
    if found.state not in REPLAYABLE:
        raise Problem(409, "conflict", f"run {found.pk} is {found.state}; only dead or unknown runs are replayed")
    with saving():
        run_replay(found.pk, now=timezone.now(), actor=caller.actor)
    return json_response(run_detail_out(run_in(caller, run)), status=202)

"""``/agents/{agent}/schedules``: the schedule resource, its actions, runs, preview, stats and audit."""
from __future__ import annotations

from datetime import timedelta
from typing import Literal

from django.db.models import Field as ModelField
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from ninja import Query, Router
from pydantic import Field

from core import timing
from runs.models import Run, RunState
from runs.selectors import schedule_stats
from runs.services.manual import run_now
from schedules import services
from schedules.models import CreatorKind, Schedule
from workspaces.models import AuditEntry

from . import schemas
from .auth import ADMIN, OPERATOR, VIEWER, principal
from .errors import saving
from .idempotency import idempotent
from .lookups import agent_in, schedule_in
from .pagination import MAX_CURSOR, page
from .problems import ProblemOut
from .responses import json_response, run_out, schedule_out
from .versions import if_match, not_modified

router = Router(tags=["schedules"])
PROBLEMS = {code: ProblemOut for code in (400, 401, 403, 404, 409, 412, 422, 428)}
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
PREVIEW_HORIZON = timedelta(days=366 * 5)


class ListQuery(schemas.PageQuery):
    state: Literal["active", "paused", "finished"] | None = None


class RunsQuery(schemas.Strict):
    cursor: str | None = Field(None, max_length=MAX_CURSOR)
    limit: int = Field(50, ge=1, le=200)
    state: RunState | None = None


class PreviewQuery(schemas.Strict):
    count: int = Field(10, ge=1, le=100)


class StatsQuery(schemas.Strict):
    window: Literal["1h", "24h", "7d", "30d"] = "24h"


def _located(schedule: Schedule) -> str:
    return f"/api/v1/agents/{schedule.agent.pk}/schedules/{schedule.pk}"


@router.get("/{agent}/schedules", response={200: schemas.Page[schemas.ScheduleOut], **PROBLEMS},
            summary="List an agent's schedules")
def list_schedules(request: HttpRequest, agent: str, query: Query[ListQuery]) -> HttpResponse:
    caller = principal(request)
    owner = agent_in(caller, agent)
    caller.require(VIEWER)
    schedules = Schedule.objects.live().filter(agent=owner).select_related("agent", "created_by")
    if query.state == "paused":
        schedules = schedules.filter(paused=True)
    elif query.state == "finished":
        schedules = schedules.filter(paused=False).exclude(finished_reason="")
    elif query.state == "active":
        schedules = schedules.filter(paused=False, finished_reason="")
    rows, cursor = page(schedules, cursor=query.cursor, limit=query.limit)
    return json_response(schemas.Page[schemas.ScheduleOut](items=[schedule_out(s) for s in rows],
                                                           next_cursor=cursor))


@router.post("/{agent}/schedules", response={201: schemas.ScheduleOut, **PROBLEMS}, summary="Create a schedule")
def create_schedule(request: HttpRequest, agent: str, body: schemas.ScheduleIn) -> HttpResponse:
    caller = principal(request)
    owner = agent_in(caller, agent)
    caller.require(ADMIN)
    now = timezone.now()

    def create() -> HttpResponse:
        fields = {name: value for name, value in body.model_dump(exclude_unset=True).items() if value is not None}
        schedule = Schedule(agent=owner, created_by_id=caller.user_id, creator_kind=CreatorKind.API_KEY,
                            created_by_key_id=caller.key.id, **fields)
        with saving():
            services.schedule_save(schedule, now=now, actor=caller.actor)
        schedule.created_by = caller.key.user
        return json_response(schedule_out(schedule), status=201, version=schedule.version,
                             location=_located(schedule))
    return idempotent(request, caller, now=now, handler=create)


@router.get("/{agent}/schedules/{schedule}", response={200: schemas.ScheduleOut, 304: None, **PROBLEMS},
            summary="Read a schedule")
def get_schedule(request: HttpRequest, agent: str, schedule: str) -> HttpResponse:
    caller = principal(request)
    found = schedule_in(caller, agent, schedule)
    caller.require(VIEWER)
    return not_modified(request, found.version) or json_response(schedule_out(found), version=found.version)


@router.patch("/{agent}/schedules/{schedule}", response={200: schemas.ScheduleOut, **PROBLEMS},
              summary="Change a schedule")
def patch_schedule(request: HttpRequest, agent: str, schedule: str, body: schemas.SchedulePatch) -> HttpResponse:
    caller = principal(request)
    found = schedule_in(caller, agent, schedule)
    caller.require(ADMIN)
    version = if_match(request)
    for name, value in body.model_dump(exclude_unset=True).items():
        setattr(found, name, _cleared(found, name) if value is None else value)
    with saving():
        services.schedule_save(found, now=timezone.now(), actor=caller.actor, expected_version=version)
    return json_response(schedule_out(found), version=found.version)


def _cleared(schedule: Schedule, name: str) -> object:
    """``null`` in a PATCH: the field's empty value (None where it may be empty, else its default)."""
    field = Schedule._meta.get_field(name)
    assert isinstance(field, ModelField)
    return None if field.null else field.get_default()


@router.delete("/{agent}/schedules/{schedule}", response={204: None, **PROBLEMS}, summary="Delete a schedule")
def delete_schedule(request: HttpRequest, agent: str, schedule: str) -> HttpResponse:
    caller = principal(request)
    found = schedule_in(caller, agent, schedule)
    caller.require(ADMIN)
    version = if_match(request)
    with saving():
        services.schedule_delete(found, now=timezone.now(), actor=caller.actor, expected_version=version)
    return HttpResponse(status=204)


@router.post("/{agent}/schedules/{schedule}/pause", response={200: schemas.ScheduleOut, **PROBLEMS},
             summary="Pause a schedule")
def pause_schedule(request: HttpRequest, agent: str, schedule: str, body: schemas.PauseIn) -> HttpResponse:
    caller = principal(request)
    found = schedule_in(caller, agent, schedule)
    caller.require(OPERATOR)
    version = if_match(request)
    with saving():
        services.schedule_pause(found, reason=body.reason, now=timezone.now(), actor=caller.actor,
                                expected_version=version)
    return json_response(schedule_out(found), version=found.version)


@router.post("/{agent}/schedules/{schedule}/resume", response={200: schemas.ScheduleOut, **PROBLEMS},
             summary="Resume a schedule")
def resume_schedule(request: HttpRequest, agent: str, schedule: str) -> HttpResponse:
    caller = principal(request)
    found = schedule_in(caller, agent, schedule)
    caller.require(OPERATOR)
    version = if_match(request)
    with saving():
        services.schedule_resume(found, now=timezone.now(), actor=caller.actor, expected_version=version)
    return json_response(schedule_out(found), version=found.version)


@router.post("/{agent}/schedules/{schedule}/trigger", response={202: schemas.RunOut, **PROBLEMS},
             summary="Start a run now (works while paused)")
def trigger_schedule(request: HttpRequest, agent: str, schedule: str, body: schemas.TriggerIn) -> HttpResponse:
    caller = principal(request)
    found = schedule_in(caller, agent, schedule)
    caller.require(OPERATOR)
    now = timezone.now()

    def trigger() -> HttpResponse:
        with saving():
            run = run_now(found, now=now, actor=caller.actor, input=body.input)
        return json_response(run_out(run), status=202, location=f"/api/v1/runs/{run.pk}")
    return idempotent(request, caller, now=now, handler=trigger)


@router.get("/{agent}/schedules/{schedule}/runs", response={200: schemas.Page[schemas.RunOut], **PROBLEMS},
            summary="A schedule's runs, newest first")
def schedule_runs(request: HttpRequest, agent: str, schedule: str, query: Query[RunsQuery]) -> HttpResponse:
    caller = principal(request)
    found = schedule_in(caller, agent, schedule)
    caller.require(VIEWER)
    runs = Run.objects.filter(schedule=found).select_related("schedule", "agent", "started_by")
    if query.state:
        runs = runs.filter(state=query.state)
    rows, cursor = page(runs, cursor=query.cursor, limit=query.limit, newest_first=True)
    return json_response(schemas.Page[schemas.RunOut](items=[run_out(r) for r in rows], next_cursor=cursor))


@router.get("/{agent}/schedules/{schedule}/preview", response={200: schemas.PreviewOut, **PROBLEMS},
            summary="The next fire times, with DST notes")
def preview_schedule(request: HttpRequest, agent: str, schedule: str, query: Query[PreviewQuery]) -> HttpResponse:
    caller = principal(request)
    found = schedule_in(caller, agent, schedule)
    caller.require(VIEWER)
    now = timezone.now()
    with saving():
        ticks = timing.ticks_between(found.plan(), after=now, until=now + PREVIEW_HORIZON, limit=query.count,
                                     runs_so_far=found.run_count)
    fires = [schemas.FireOut(tick_at=t.at, fire_at=t.fire_at, local=t.local.isoformat(), runs=t.runs,
                             note=t.note or "") for t in ticks]
    return json_response(schemas.PreviewOut(timezone=found.timezone, fires=fires))


@router.get("/{agent}/schedules/{schedule}/stats", response={200: schemas.StatsOut, **PROBLEMS},
            summary="Health over a window: totals, success rate, failures, durations, lateness")
def stats_schedule(request: HttpRequest, agent: str, schedule: str, query: Query[StatsQuery]) -> HttpResponse:
    caller = principal(request)
    found = schedule_in(caller, agent, schedule)
    caller.require(VIEWER)
    now = timezone.now()
    stats = schedule_stats(found.pk, since=now - WINDOWS[query.window])
    return json_response(schemas.StatsOut(
        window=query.window, since=now - WINDOWS[query.window], totals=stats.totals,
        success_rate=stats.success_rate, failures_by_category=stats.failures_by_category,
        consecutive_failures=found.consecutive_failures, failure_limit=found.failure_limit,
        duration=schemas.DurationsOut(p50_ms=stats.duration_p50_ms, p95_ms=stats.duration_p95_ms),
        lateness=schemas.DurationsOut(p50_ms=stats.lateness_p50_ms, p95_ms=stats.lateness_p95_ms),
        next_tick_at=found.next_tick_at, next_fire_at=found.next_fire_at, server_time=now))


@router.get("/{agent}/schedules/{schedule}/audit", response={200: list[schemas.AuditOut], **PROBLEMS},
            summary="Who changed the schedule, when, and what")
def audit_schedule(request: HttpRequest, agent: str, schedule: str) -> HttpResponse:
    caller = principal(request)
    found = schedule_in(caller, agent, schedule)
    caller.require(VIEWER)
    entries = (AuditEntry.objects.filter(object_type="schedule", object_id=found.pk)
               .select_related("user", "api_key")[:500])
    out = [schemas.AuditOut(at=e.at, action=e.action, source=e.source,
                            user=e.user.get_username() if e.user else None,
                            api_key=f"tw_{e.api_key.prefix}_…" if e.api_key else None,
                            version_before=e.version_before, version_after=e.version_after,
                            changes=e.changes, detail=e.detail) for e in entries]
    return JsonResponse([entry.model_dump(mode="json") for entry in out], safe=False)

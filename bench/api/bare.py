"""The floor the API is measured against: plain Django views doing the same work by hand.

Each view authenticates the same key the same way as the API (``api_key_verify``,
then the user's current role in the key's workspace), reads the same rows with
the ORM and answers the same JSON (the same fields, datetimes written as
pydantic writes them), and the trigger starts its run through the same
``run_now``, so the run is committed and published to Redis before the answer.
What it leaves out is the API's machinery: django-ninja's routing and parameter
parsing, pydantic models, the lookup helpers (one query per path segment),
problem documents, ``Idempotency-Key`` handling and ``If-None-Match``.
"""
from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from runs.models import Run
from runs.services.manual import RunRefused, run_now
from schedules.models import Schedule
from workspaces.audit import Actor
from workspaces.keys import KeyRefused, api_key_verify
from workspaces.models import ApiKey, Role
from workspaces.roles import member_role, role_at_least

View = Callable[..., HttpResponse]

# The schedule's own columns, in the order the API's ``ScheduleOut`` lists them.
SCHEDULE_COLUMNS = (
    "kind", "cron", "interval_seconds", "interval_mode", "run_at", "timezone", "dst_gap", "dst_fold", "start_at",
    "end_at", "max_runs", "jitter_seconds", "missed_policy", "missed_grace_seconds", "replay_cap", "overlap_policy",
    "max_concurrent", "concurrency_scope", "timeout_seconds", "max_attempts", "retry_backoff_seconds",
    "retry_backoff_max_seconds", "input_template", "session_mode", "failure_limit", "paused", "paused_reason",
    "finished_reason", "consecutive_failures", "next_tick_at", "next_fire_at", "last_tick_at", "run_count", "version",
)
RUN_COLUMNS = (
    "trigger", "state", "skip_reason", "tick_at", "run_number", "attempt", "max_attempts", "not_before", "created_at",
    "started_at", "finished_at", "lateness_ms", "session_id", "input", "output", "error_category", "error_message",
)


def _plain(value: Any) -> Any:
    """A column as JSON: datetimes as pydantic writes them (ISO 8601, ``Z`` for UTC)."""
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return value


def _refused(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"status": status, "detail": detail}, status=status)


def keyed(needed: str) -> Callable[[View], View]:
    """The view runs with the caller's key, or answers 401 (no live key, not a member) or 403 (role)."""
    def decorate(view: View) -> View:
        def wrapped(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token:
                return _refused(401, "send Authorization: Bearer tw_…")
            try:
                key = api_key_verify(token.strip(), now=timezone.now())
            except KeyRefused as refused:
                return _refused(401, str(refused))
            role = member_role(key.user_id, key.workspace_id)
            if role is None:
                return _refused(401, "the key's user is no longer a member of its workspace")
            if not role_at_least(role, needed):
                return _refused(403, f"this needs the {needed} role")
            return view(request, key, **kwargs)
        return wrapped
    return decorate


def _schedules(key: ApiKey, agent: int) -> Any:
    return (Schedule.objects.live().select_related("agent", "created_by")
            .filter(agent_id=agent, agent__workspace_id=key.workspace_id, agent__deleted_at__isnull=True))


def _schedule_json(schedule: Schedule) -> dict[str, Any]:
    state = "deleted" if schedule.deleted_at else "paused" if schedule.paused else (
        "finished" if schedule.finished_reason else "active")
    creator = schedule.created_by
    return {"id": schedule.pk, "name": schedule.name, "agent": schedule.agent.name, "state": state,
            **{column: _plain(getattr(schedule, column)) for column in SCHEDULE_COLUMNS},
            "created_by": creator.get_username() if creator is not None else None,
            "created_at": _plain(schedule.created_at), "updated_at": _plain(schedule.updated_at)}


def _run_json(run: Run, schedule: Schedule, starter: User | None) -> dict[str, Any]:
    return {"id": run.pk, "schedule": schedule.name, "schedule_id": schedule.pk, "agent": schedule.agent.name,
            **{column: _plain(getattr(run, column)) for column in RUN_COLUMNS},
            "started_by": starter.get_username() if starter is not None else None}


@csrf_exempt
@require_GET
@keyed(Role.VIEWER)
def schedule_detail(request: HttpRequest, key: ApiKey, agent: int, schedule: int) -> HttpResponse:
    found = _schedules(key, agent).filter(pk=schedule).first()
    if found is None:
        return _refused(404, "no such schedule")
    response = JsonResponse(_schedule_json(found))
    response["ETag"] = f'"{found.version}"'
    return response


@csrf_exempt
@require_GET
@keyed(Role.VIEWER)
def schedule_list(request: HttpRequest, key: ApiKey, agent: int) -> HttpResponse:
    try:
        limit = min(200, max(1, int(request.GET.get("limit", "50"))))
    except ValueError:
        return _refused(422, "limit: not a number")
    rows = list(_schedules(key, agent).order_by("pk")[:limit + 1])
    more, rows = len(rows) > limit, rows[:limit]
    cursor = base64.urlsafe_b64encode(str(rows[-1].pk).encode()).decode().rstrip("=") if more else None
    return JsonResponse({"items": [_schedule_json(row) for row in rows], "next_cursor": cursor})


@csrf_exempt
@require_POST
@keyed(Role.OPERATOR)
def schedule_trigger(request: HttpRequest, key: ApiKey, agent: int, schedule: int) -> HttpResponse:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return _refused(422, "the body is not JSON")
    found = _schedules(key, agent).filter(pk=schedule).first()
    if found is None:
        return _refused(404, "no such schedule")
    actor = Actor(source="api", user_id=key.user_id, api_key_id=key.id)
    try:
        run = run_now(found, now=timezone.now(), actor=actor, input=body.get("input"))
    except RunRefused as refused:
        return _refused(409, str(refused))
    response = JsonResponse(_run_json(run, found, key.user if run.started_by_id else None), status=202)
    response["Location"] = f"/api/v1/runs/{run.pk}"
    return response

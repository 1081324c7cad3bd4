"""Objects as the API shows them, and the responses that carry their versions."""
from __future__ import annotations

from typing import Any

from django.http import HttpResponse, JsonResponse
from pydantic import BaseModel

from runs.models import AgentCall, Run
from runs.outbound import OutboundDelivery
from schedules.models import Agent, Schedule

from . import schemas
from .versions import etag


def json_response(body: BaseModel, *, status: int = 200, version: int | None = None,
                  location: str | None = None) -> HttpResponse:
    response = JsonResponse(body.model_dump(mode="json"), status=status)
    if version is not None:
        response["ETag"] = etag(version)
    if location:
        response["Location"] = location
    return response


def agent_out(agent: Agent) -> schemas.AgentOut:
    return schemas.AgentOut(
        id=agent.pk, name=agent.name, workspace=agent.workspace.slug, adapter=agent.adapter, config=agent.config,
        is_active=agent.is_active, version=agent.version, created_at=agent.created_at, updated_at=agent.updated_at)


def schedule_state(schedule: Schedule) -> str:
    if schedule.deleted_at is not None:
        return "deleted"
    if schedule.paused:
        return "paused"
    return "finished" if schedule.finished_reason else "active"


_SCHEDULE_COPIED = [name for name in schemas.ScheduleOut.model_fields
                    if name not in {"agent", "state", "created_by"}]


def schedule_out(schedule: Schedule) -> schemas.ScheduleOut:
    values: dict[str, Any] = {name: getattr(schedule, name) for name in _SCHEDULE_COPIED}
    creator = schedule.created_by
    return schemas.ScheduleOut(**values, agent=schedule.agent.name, state=schedule_state(schedule),
                               created_by=creator.get_username() if creator is not None else None)


_RUN_COPIED = [name for name in schemas.RunOut.model_fields if name not in {"schedule", "agent", "started_by"}]


def run_out(run: Run) -> schemas.RunOut:
    values: dict[str, Any] = {name: getattr(run, name) for name in _RUN_COPIED}
    starter = run.started_by
    return schemas.RunOut(**values, schedule=run.schedule.name if run.schedule is not None else None,
                          agent=run.agent.name, started_by=starter.get_username() if starter is not None else None)


def run_detail_out(run: Run) -> schemas.RunDetailOut:
    calls = AgentCall.objects.filter(run=run).order_by("attempt")
    attempts = [schemas.AttemptOut(attempt=call.attempt, state=call.state, started_at=call.started_at,
                                   finished_at=call.finished_at, error_message=call.error_message)
                for call in calls]
    return schemas.RunDetailOut(**run_out(run).model_dump(), attempts=attempts, deliveries=deliveries_out(run))


def deliveries_out(run: Run) -> list[schemas.DeliveryOut]:
    fields = list(schemas.DeliveryOut.model_fields)
    return [schemas.DeliveryOut(**row) for row in OutboundDelivery.objects.filter(run=run).order_by("id")
            .values(*fields)]

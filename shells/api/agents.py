"""``/agents``: list, create, read, change and (soft) delete the workspace's agents."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Query, Router

from schedules.agents import agent_delete, agent_save
from schedules.models import Agent

from . import schemas
from .auth import ADMIN, VIEWER, principal
from .errors import saving
from .idempotency import idempotent
from .lookups import agent_in
from .pagination import page
from .problems import ProblemOut
from .responses import agent_out, json_response
from .versions import if_match, not_modified

router = Router(tags=["agents"])
PROBLEMS = {code: ProblemOut for code in (400, 401, 403, 404, 409, 412, 422, 428)}


@router.get("", response={200: schemas.Page[schemas.AgentOut], **PROBLEMS}, summary="List agents")
def list_agents(request: HttpRequest, query: Query[schemas.PageQuery]) -> HttpResponse:
    caller = principal(request)
    caller.require(VIEWER)
    agents = Agent.objects.live().filter(workspace_id=caller.workspace_id).select_related("workspace")
    rows, cursor = page(agents, cursor=query.cursor, limit=query.limit)
    return json_response(schemas.Page[schemas.AgentOut](items=[agent_out(a) for a in rows], next_cursor=cursor))


@router.post("", response={201: schemas.AgentOut, **PROBLEMS}, summary="Create an agent")
def create_agent(request: HttpRequest, body: schemas.AgentIn) -> HttpResponse:
    caller = principal(request)
    caller.require(ADMIN)
    now = timezone.now()

    def create() -> HttpResponse:
        agent = Agent(workspace_id=caller.workspace_id, **body.model_dump())
        with saving():
            agent_save(agent, now=now, actor=caller.actor)
        return json_response(agent_out(agent), status=201, version=agent.version,
                             location=f"/api/v1/agents/{agent.pk}")
    return idempotent(request, caller, now=now, handler=create)


@router.get("/{agent}", response={200: schemas.AgentOut, 304: None, **PROBLEMS}, summary="Read an agent")
def get_agent(request: HttpRequest, agent: str) -> HttpResponse:
    caller = principal(request)
    found = agent_in(caller, agent)
    caller.require(VIEWER)
    return not_modified(request, found.version) or json_response(agent_out(found), version=found.version)


@router.patch("/{agent}", response={200: schemas.AgentOut, **PROBLEMS}, summary="Change an agent")
def patch_agent(request: HttpRequest, agent: str, body: schemas.AgentPatch) -> HttpResponse:
    caller = principal(request)
    found = agent_in(caller, agent)
    caller.require(ADMIN)
    version = if_match(request)
    for name, value in body.model_dump(exclude_unset=True).items():
        setattr(found, name, value)
    with saving():
        agent_save(found, now=timezone.now(), actor=caller.actor, expected_version=version)
    return json_response(agent_out(found), version=found.version)


@router.delete("/{agent}", response={204: None, **PROBLEMS}, summary="Delete an agent and its schedules")
def delete_agent(request: HttpRequest, agent: str) -> HttpResponse:
    caller = principal(request)
    found = agent_in(caller, agent)
    caller.require(ADMIN)
    version = if_match(request)
    with saving():
        agent_delete(found, now=timezone.now(), actor=caller.actor, expected_version=version)
    return HttpResponse(status=204)

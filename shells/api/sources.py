"""``/sources``: the workspace's webhook sources. Reading needs viewer, writing admin (``If-Match`` on changes).

A source's secrets are environment variable names, never values; the answer
says whether each is set in this server's environment and whether it is
retired, so an operator can see a rotation's state.
"""
from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Query, Router
from pydantic import BaseModel, Field, StrictBool

from events.models import SourceKind, WebhookSource
from events.services.sources import SourceInUse, source_delete, source_save
from events.signatures import secrets_active

from . import schemas
from .auth import ADMIN, VIEWER, Principal, principal
from .errors import saving
from .idempotency import idempotent
from .pagination import page
from .problems import Problem, ProblemOut, field_errors, not_found
from .responses import json_response
from .versions import if_match, not_modified

router = Router(tags=["events"])
PROBLEMS = {code: ProblemOut for code in (400, 401, 403, 404, 409, 412, 422, 428)}
Slug = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[-a-zA-Z0-9_]+$")]
Header = Annotated[schemas.Text, Field(max_length=100, pattern=r"^[-A-Za-z0-9_]*$")]


class SecretIn(schemas.Strict):
    env: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Z_][A-Z0-9_]*$",
                              description="The environment variable that holds the secret.")]
    retire_at: schemas.Instant | None = None


class SourcePatch(schemas.Strict):
    slug: Slug | None = None
    kind: SourceKind | None = None
    description: Annotated[schemas.Text, Field(max_length=200)] | None = None
    enabled: StrictBool | None = None
    secrets: list[SecretIn] | None = None
    tolerance_seconds: Annotated[schemas.Count, Field(le=86_400)] | None = None
    body_limit_bytes: Annotated[schemas.Count, Field(ge=1, le=10 * 1024 * 1024)] | None = None
    require_json: StrictBool | None = None
    signature_header: Header | None = None
    id_header: Header | None = None
    type_field: Annotated[schemas.Text, Field(max_length=100)] | None = None
    rate_per_minute: schemas.Count | None = None


class SourceIn(SourcePatch):
    slug: Slug


class SecretOut(BaseModel):
    env: str
    retire_at: str | None
    set: bool = Field(description="Whether the variable is set in this server's environment.")
    active: bool = Field(description="Set and not retired: deliveries signed with it verify.")


class SourceOut(BaseModel):
    id: int
    slug: str
    url: str = Field(description="Where the sender posts: /api/v1/hooks/<slug>.")
    kind: str
    description: str
    enabled: bool
    secrets: list[SecretOut]
    tolerance_seconds: int
    body_limit_bytes: int
    require_json: bool
    signature_header: str
    id_header: str
    type_field: str
    rate_per_minute: int
    version: int
    created_at: datetime
    updated_at: datetime


def source_out(source: WebhookSource) -> SourceOut:
    active = {s.env for s in secrets_active(source, now=timezone.now())}
    secrets = [SecretOut(env=str(e.get("env", "")), retire_at=e.get("retire_at"), set=bool(os.environ.get(
        str(e.get("env", "")))), active=e.get("env") in active) for e in source.secrets or []]
    return SourceOut(id=source.pk, slug=source.slug, url=f"/api/v1/hooks/{source.slug}", kind=source.kind,
                     description=source.description, enabled=source.enabled, secrets=secrets,
                     tolerance_seconds=source.tolerance_seconds, body_limit_bytes=source.body_limit_bytes,
                     require_json=source.require_json, signature_header=source.signature_header,
                     id_header=source.id_header, type_field=source.type_field,
                     rate_per_minute=source.rate_per_minute, version=source.version, created_at=source.created_at,
                     updated_at=source.updated_at)


def _fields(body: SourcePatch) -> dict[str, Any]:
    values = body.model_dump(mode="json", exclude_unset=True)
    nulls = sorted(name for name, value in values.items() if value is None)
    if nulls:  # every field of a source has a value; leave one out to keep it (or take the default)
        raise field_errors({name: ["may not be null"] for name in nulls})
    if "secrets" in values:
        values["secrets"] = [{"env": s["env"], "retire_at": s.get("retire_at")} for s in values["secrets"]]
    return values


def source_in(caller: Principal, ref: str) -> WebhookSource:
    where = {"pk": int(ref)} if ref.isascii() and ref.isdigit() and len(ref) < 19 else {"slug": ref[:100]}
    found = WebhookSource.objects.filter(workspace_id=caller.workspace_id, **where).first()
    if found is None:
        raise not_found(f"source {ref[:100]!r}")
    return found


@router.get("", response={200: schemas.Page[SourceOut], **PROBLEMS}, summary="List webhook sources")
def list_sources(request: HttpRequest, query: Query[schemas.PageQuery]) -> HttpResponse:
    caller = principal(request)
    caller.require(VIEWER)
    rows, cursor = page(WebhookSource.objects.filter(workspace_id=caller.workspace_id), cursor=query.cursor,
                        limit=query.limit)
    return json_response(schemas.Page[SourceOut](items=[source_out(s) for s in rows], next_cursor=cursor))


@router.post("", response={201: SourceOut, **PROBLEMS}, summary="Create a webhook source")
def create_source(request: HttpRequest, body: SourceIn) -> HttpResponse:
    caller = principal(request)
    caller.require(ADMIN)
    now = timezone.now()

    def create() -> HttpResponse:
        source = WebhookSource(workspace_id=caller.workspace_id, created_by_id=caller.user_id, **_fields(body))
        with saving():
            source_save(source, now=now, actor=caller.actor)
        return json_response(source_out(source), status=201, version=source.version,
                             location=f"/api/v1/sources/{source.pk}")
    return idempotent(request, caller, now=now, handler=create)


@router.get("/{source}", response={200: SourceOut, 304: None, **PROBLEMS}, summary="Read a webhook source")
def get_source(request: HttpRequest, source: str) -> HttpResponse:
    caller = principal(request)
    found = source_in(caller, source)
    caller.require(VIEWER)
    return not_modified(request, found.version) or json_response(source_out(found), version=found.version)


@router.patch("/{source}", response={200: SourceOut, **PROBLEMS}, summary="Change a webhook source")
def patch_source(request: HttpRequest, source: str, body: SourcePatch) -> HttpResponse:
    caller = principal(request)
    found = source_in(caller, source)
    caller.require(ADMIN)
    version = if_match(request)
    for name, value in _fields(body).items():
        setattr(found, name, value)
    with saving():
        source_save(found, now=timezone.now(), actor=caller.actor, expected_version=version)
    return json_response(source_out(found), version=found.version)


@router.delete("/{source}", response={204: None, **PROBLEMS}, summary="Delete a webhook source with no events")
def delete_source(request: HttpRequest, source: str) -> HttpResponse:
    caller = principal(request)
    found = source_in(caller, source)
    caller.require(ADMIN)
    version = if_match(request)
    with saving():
        try:
            source_delete(found, now=timezone.now(), actor=caller.actor, expected_version=version)
        except SourceInUse as error:
            raise Problem(409, "conflict", str(error)) from None
    return HttpResponse(status=204)

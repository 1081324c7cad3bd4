"""``/subscriptions``: what routes events to agents, its actions (pause, resume, release) and its runs.

Roles as for schedules: viewers read, operators pause, resume and release a
held breaker, admins create, change and delete. Every write needs ``If-Match``.
A ``{subscription}`` is an id or a name, inside the caller's workspace only.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from django.db.models import Field as ModelField
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Query, Router
from pydantic import BaseModel, Field, StrictBool

from events.models import SessionKeyMode, Subscription
from events.services import subscriptions as services
from runs.models import Run
from schedules.models import ConcurrencyScope, OverlapPolicy
from schedules.selectors import id_or_name

from . import schemas
from .auth import ADMIN, OPERATOR, VIEWER, Principal, principal
from .errors import saving
from .idempotency import idempotent
from .lookups import agent_in
from .pagination import page
from .problems import ProblemOut, not_found
from .responses import json_response, run_out
from .versions import if_match, not_modified

router = Router(tags=["subscriptions"])
PROBLEMS = {code: ProblemOut for code in (400, 401, 403, 404, 409, 412, 422, 428)}
Seconds = Annotated[schemas.Count, Field(le=86_400 * 30)]
Positive = Annotated[schemas.Count, Field(ge=1)]


class SubscriptionIn(schemas.Strict):
    name: schemas.Name
    agent: Annotated[schemas.Text, Field(min_length=1, max_length=100, description="The agent's id or name.")]
    event_type: Annotated[schemas.Text, Field(min_length=1, max_length=200, examples=["github.*"])]
    match: dict[str, Any] = Field(default_factory=dict, examples=[{"data.repo": "web"}],
                                  description="Dotted paths over the event to strings, numbers, booleans or null.")
    input_template: Annotated[schemas.Text, Field(max_length=100_000)] = ""
    session_mode: SessionKeyMode = SessionKeyMode.NEW
    session_key: Annotated[schemas.Text, Field(max_length=200)] = ""
    overlap_policy: OverlapPolicy = OverlapPolicy.BUFFER
    concurrency_scope: ConcurrencyScope = ConcurrencyScope.SESSION
    max_concurrent: Positive = 1
    timeout_seconds: Positive = 300
    max_attempts: Positive = 3
    retry_backoff_seconds: Seconds = 10
    retry_backoff_max_seconds: Seconds = 600
    completion_url: Annotated[schemas.Text, Field(max_length=500)] = ""
    allow_self_trigger: StrictBool = False
    debounce_seconds: Seconds = 60
    breaker_limit: Positive = 20
    breaker_window_seconds: Annotated[Positive, Field(le=86_400)] = 600
    breaker_cooldown_seconds: Seconds = 600


class SubscriptionPatch(schemas.Strict):
    """Every field optional: absent is left alone, ``null`` is its default."""

    name: schemas.Name | None = None
    agent: Annotated[schemas.Text, Field(min_length=1, max_length=100)] | None = None
    event_type: Annotated[schemas.Text, Field(min_length=1, max_length=200)] | None = None
    match: dict[str, Any] | None = None
    input_template: Annotated[schemas.Text, Field(max_length=100_000)] | None = None
    session_mode: SessionKeyMode | None = None
    session_key: Annotated[schemas.Text, Field(max_length=200)] | None = None
    overlap_policy: OverlapPolicy | None = None
    concurrency_scope: ConcurrencyScope | None = None
    max_concurrent: Positive | None = None
    timeout_seconds: Positive | None = None
    max_attempts: Positive | None = None
    retry_backoff_seconds: Seconds | None = None
    retry_backoff_max_seconds: Seconds | None = None
    completion_url: Annotated[schemas.Text, Field(max_length=500)] | None = None
    allow_self_trigger: StrictBool | None = None
    debounce_seconds: Seconds | None = None
    breaker_limit: Positive | None = None
    breaker_window_seconds: Annotated[Positive, Field(le=86_400)] | None = None
    breaker_cooldown_seconds: Seconds | None = None


class SubscriptionOut(BaseModel):
    id: int
    name: str
    agent: str
    agent_id: int
    event_type: str
    match: dict[str, Any]
    input_template: str
    session_mode: str
    session_key: str
    overlap_policy: str
    concurrency_scope: str
    max_concurrent: int
    timeout_seconds: int
    max_attempts: int
    retry_backoff_seconds: int
    retry_backoff_max_seconds: int
    completion_url: str
    allow_self_trigger: bool
    debounce_seconds: int
    breaker_limit: int
    breaker_window_seconds: int
    breaker_cooldown_seconds: int
    breaker_state: str = Field(description="closed, held (a flood: matches are skipped) or probing (one probe run).")
    held_at: datetime | None
    paused: bool
    paused_reason: str
    version: int
    created_at: datetime
    updated_at: datetime


_COPIED = [name for name in SubscriptionOut.model_fields if name != "agent"]


def subscription_out(subscription: Subscription) -> SubscriptionOut:
    values: dict[str, Any] = {name: getattr(subscription, name) for name in _COPIED}
    return SubscriptionOut(**values, agent=subscription.agent.name)


def subscription_in(caller: Principal, ref: str) -> Subscription:
    where = id_or_name(ref)
    found = None if where is None else (
        Subscription.objects.filter(workspace_id=caller.workspace_id, deleted_at__isnull=True, **where)
        .select_related("agent").first())
    if found is None:
        raise not_found(f"subscription {ref!r}")
    return found


def _answer(subscription: Subscription, *, status: int = 200) -> HttpResponse:
    location = f"/api/v1/subscriptions/{subscription.pk}" if status == 201 else None
    return json_response(subscription_out(subscription), status=status, version=subscription.version,
                         location=location)


@router.get("", response={200: schemas.Page[SubscriptionOut], **PROBLEMS}, summary="List subscriptions")
def list_subscriptions(request: HttpRequest, query: Query[schemas.PageQuery]) -> HttpResponse:
    caller = principal(request)
    caller.require(VIEWER)
    rows = Subscription.objects.filter(workspace_id=caller.workspace_id, deleted_at__isnull=True)
    found, cursor = page(rows.select_related("agent"), cursor=query.cursor, limit=query.limit)
    return json_response(schemas.Page[SubscriptionOut](items=[subscription_out(s) for s in found],
                                                       next_cursor=cursor))


@router.post("", response={201: SubscriptionOut, **PROBLEMS}, summary="Create a subscription")
def create_subscription(request: HttpRequest, body: SubscriptionIn) -> HttpResponse:
    caller = principal(request)
    caller.require(ADMIN)
    now = timezone.now()

    def create() -> HttpResponse:
        fields = body.model_dump(exclude={"agent"})
        subscription = Subscription(workspace_id=caller.workspace_id, agent=agent_in(caller, body.agent),
                                    created_by_id=caller.user_id, **fields)
        with saving():
            services.subscription_save(subscription, now=now, actor=caller.actor)
        return _answer(subscription, status=201)
    return idempotent(request, caller, now=now, handler=create)


@router.get("/{subscription}", response={200: SubscriptionOut, 304: None, **PROBLEMS}, summary="Read a subscription")
def get_subscription(request: HttpRequest, subscription: str) -> HttpResponse:
    caller = principal(request)
    found = subscription_in(caller, subscription)
    caller.require(VIEWER)
    return not_modified(request, found.version) or _answer(found)


@router.patch("/{subscription}", response={200: SubscriptionOut, **PROBLEMS}, summary="Change a subscription")
def patch_subscription(request: HttpRequest, subscription: str, body: SubscriptionPatch) -> HttpResponse:
    caller = principal(request)
    found = subscription_in(caller, subscription)
    caller.require(ADMIN)
    version = if_match(request)
    for name, value in body.model_dump(exclude_unset=True).items():
        if name == "agent":
            found.agent = agent_in(caller, value) if value is not None else found.agent
        else:
            setattr(found, name, _default(name) if value is None else value)
    with saving():
        services.subscription_save(found, now=timezone.now(), actor=caller.actor, expected_version=version)
    return _answer(found)


def _default(name: str) -> object:
    field = Subscription._meta.get_field(name)
    assert isinstance(field, ModelField)
    return field.get_default()


@router.delete("/{subscription}", response={204: None, **PROBLEMS}, summary="Delete a subscription")
def delete_subscription(request: HttpRequest, subscription: str) -> HttpResponse:
    caller = principal(request)
    found = subscription_in(caller, subscription)
    caller.require(ADMIN)
    version = if_match(request)
    with saving():
        services.subscription_delete(found, now=timezone.now(), actor=caller.actor, expected_version=version)
    return HttpResponse(status=204)


@router.post("/{subscription}/pause", response={200: SubscriptionOut, **PROBLEMS}, summary="Pause a subscription")
def pause_subscription(request: HttpRequest, subscription: str, body: schemas.PauseIn) -> HttpResponse:
    caller = principal(request)
    found = subscription_in(caller, subscription)
    caller.require(OPERATOR)
    version = if_match(request)
    with saving():
        services.subscription_pause(found, reason=body.reason, now=timezone.now(), actor=caller.actor,
                                    expected_version=version)
    return _answer(found)


@router.post("/{subscription}/resume", response={200: SubscriptionOut, **PROBLEMS},
             summary="Resume a subscription")
def resume_subscription(request: HttpRequest, subscription: str) -> HttpResponse:
    caller = principal(request)
    found = subscription_in(caller, subscription)
    caller.require(OPERATOR)
    version = if_match(request)
    with saving():
        services.subscription_resume(found, now=timezone.now(), actor=caller.actor, expected_version=version)
    return _answer(found)


@router.post("/{subscription}/release", response={200: SubscriptionOut, **PROBLEMS},
             summary="Release a held rate breaker (matches run again)")
def release_subscription(request: HttpRequest, subscription: str) -> HttpResponse:
    caller = principal(request)
    found = subscription_in(caller, subscription)
    caller.require(OPERATOR)
    version = if_match(request)
    with saving():
        services.subscription_release(found, now=timezone.now(), actor=caller.actor, expected_version=version)
    return _answer(found)


@router.get("/{subscription}/runs", response={200: schemas.Page[schemas.RunOut], **PROBLEMS},
            summary="The runs a subscription started or skipped, newest first")
def subscription_runs(request: HttpRequest, subscription: str, query: Query[schemas.PageQuery]) -> HttpResponse:
    caller = principal(request)
    found = subscription_in(caller, subscription)
    caller.require(VIEWER)
    runs = Run.objects.filter(route__subscription=found).select_related("schedule", "agent", "started_by")
    rows, cursor = page(runs, cursor=query.cursor, limit=query.limit, newest_first=True)
    return json_response(schemas.Page[schemas.RunOut](items=[run_out(r) for r in rows], next_cursor=cursor))

"""``/events``: first-party events posted with an API key, and the event ledger, read-only.

``POST /events`` takes ``{type, id, subject?, data, occurred_at?}`` (operator
role); an ``Idempotency-Key`` header may stand in for ``id``. Answers as the
webhooks do: 202 stored, 200 a repeat of the same id (never an error). The
stored payload is the body as posted. Chain headers (``tickwise-chain-id``, …)
are read as on a webhook.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Query, Router
from pydantic import BaseModel, Field

from events.delivery import event_type_valid
from events.models import InboundEvent, Route, RoutingOutcome
from events.services.ingest import EventDraft, EventMalformed, Throttled, event_ingest

from . import schemas
from .auth import OPERATOR, VIEWER, principal
from .hooks import AcceptedOut, ingested_response, throttled
from .pagination import MAX_CURSOR, page
from .problems import Problem, ProblemOut, field_errors, not_found
from .responses import json_response

router = Router(tags=["events"])
PROBLEMS = {code: ProblemOut for code in (400, 401, 403, 404, 422, 429)}
# Body problems are 422 ``validation-error`` naming the field, as everywhere in the API;
# a malformed chain header is a 400 ``malformed-event``, as on a webhook.
EventId = Annotated[schemas.Text, Field(min_length=1, max_length=200)]


class EventIn(schemas.Strict):
    type: Annotated[schemas.Text, Field(min_length=1, max_length=200, examples=["deploy.finished"])]
    id: EventId | None = Field(None, description="The event's id, unique per workspace; or send Idempotency-Key.")
    subject: Annotated[schemas.Text, Field(max_length=200)] = ""
    data: Any = Field(description="The event's content (JSON).")
    occurred_at: schemas.Instant | None = None


class EventOut(BaseModel):
    id: int
    event_id: str
    source: str | None
    type: str
    subject: str
    occurred_at: datetime | None
    received_at: datetime
    outcome: str
    chain_id: str
    depth: int
    actor_id: int | None
    parent_run_id: int | None


class RouteOut(BaseModel):
    subscription: str
    run_id: int | None
    run_state: str | None
    skip_reason: str | None


class EventDetailOut(EventOut):
    payload: Any
    payload_hash: str
    headers: dict[str, str]
    secret_env: str
    routed_at: datetime | None
    routing_error: str
    routes: list[RouteOut]


class EventsQuery(schemas.Strict):
    cursor: str | None = Field(None, max_length=MAX_CURSOR)
    limit: int = Field(50, ge=1, le=200)
    type: schemas.Text | None = Field(None, max_length=200)
    source: schemas.Text | None = Field(None, max_length=100)
    outcome: RoutingOutcome | None = None


def _event_id(request: HttpRequest, body: EventIn) -> str:
    if body.id is not None:
        return body.id
    key = request.headers.get("Idempotency-Key", "")
    if not 1 <= len(key) <= 200 or not key.isprintable():
        raise field_errors({"id": ["send an id (or an Idempotency-Key header of 1 to 200 printable characters)"]})
    return key


@router.post("", response={200: AcceptedOut, 202: AcceptedOut, **PROBLEMS},
             summary="Post a first-party event")
def post_event(request: HttpRequest, body: EventIn) -> HttpResponse:
    caller = principal(request)
    caller.require(OPERATOR)
    event_id = _event_id(request, body)
    payload = {**body.model_dump(mode="json", exclude_unset=True), "id": event_id}
    try:
        draft = EventDraft(workspace_id=caller.workspace_id, source_id=None, event_id=event_id,
                           type=event_type_valid(body.type, "type"), payload=payload, subject=body.subject,
                           occurred_at=body.occurred_at, headers=dict(request.headers),
                           posted_by_id=caller.user_id)
        return ingested_response(event_ingest(draft, now=timezone.now()), event_id)
    except EventMalformed as error:  # a body field (422, like any body) or a chain header (400)
        if error.field in {"type", "body"}:
            raise field_errors({"data" if error.field == "body" else "type": [error.message]}) from None
        raise Problem(400, "malformed-event", str(error), errors=[{"field": error.field, "message": error.message}]) \
            from None
    except Throttled as error:
        raise throttled(error) from None


def _event_out(event: InboundEvent) -> EventOut:
    return EventOut(id=event.pk, event_id=event.event_id, source=event.source.slug if event.source else None,
                    type=event.type, subject=event.subject, occurred_at=event.occurred_at,
                    received_at=event.received_at, outcome=event.outcome, chain_id=event.chain_id,
                    depth=event.depth, actor_id=event.actor_id, parent_run_id=event.parent_run_id)


@router.get("", response={200: schemas.Page[EventOut], **PROBLEMS}, summary="Events, newest first")
def list_events(request: HttpRequest, query: Query[EventsQuery]) -> HttpResponse:
    caller = principal(request)
    caller.require(VIEWER)
    events = InboundEvent.objects.filter(workspace_id=caller.workspace_id).select_related("source")
    if query.type:
        events = events.filter(type=query.type)
    if query.source:
        events = events.filter(source__slug=query.source)
    if query.outcome:
        events = events.filter(outcome=query.outcome)
    rows, cursor = page(events, cursor=query.cursor, limit=query.limit, newest_first=True)
    return json_response(schemas.Page[EventOut](items=[_event_out(e) for e in rows], next_cursor=cursor))


def _routes(event: InboundEvent) -> list[RouteOut]:
    routes = Route.objects.filter(event=event).select_related("subscription", "run").order_by("id")
    return [RouteOut(subscription=route.subscription.name, run_id=route.run_id,
                     run_state=route.run.state if route.run else None,
                     skip_reason=(route.run.skip_reason or None) if route.run else None) for route in routes]


@router.get("/{event}", response={200: EventDetailOut, **PROBLEMS},
            summary="An event: payload, headers, causation, outcome, and the runs it started")
def get_event(request: HttpRequest, event: str) -> HttpResponse:
    caller = principal(request)
    found = (InboundEvent.objects.filter(pk=int(event), workspace_id=caller.workspace_id)
             .select_related("source").first() if event.isascii() and event.isdigit() and len(event) < 19 else None)
    if found is None:
        raise not_found(f"event {event[:40]!r}")
    caller.require(VIEWER)
    return json_response(EventDetailOut(
        **_event_out(found).model_dump(), payload=found.payload, payload_hash=found.payload_hash,
        headers=found.headers, secret_env=found.secret_env, routed_at=found.routed_at,
        routing_error=found.routing_error, routes=_routes(found)))

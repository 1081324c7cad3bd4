"""``/waitpoints``: where a parked run's token wait is completed, with a key or by its signed callback URL.

``GET /waitpoints?run=N`` lists the waitpoints a run created and
``GET /waitpoints/{id}`` shows one (viewer role); ``POST /waitpoints/{id}/cancel``
(operator) ends a wait and its parked run, without a resume.
``POST /waitpoints/{id}/complete`` (operator role) and
``POST /waitpoints/{id}/callback?sig=…`` (no key: ``sig`` is the server's
HMAC of the id, checked in constant time) both complete a token wait with
the posted payload and answer 200 with the waitpoint. A second completion,
or one after the wait timed out, changes nothing and answers 200 with the
outcome already recorded (``completed: false``). See docs/autonomy.md.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from ninja import Query, Router
from pydantic import BaseModel, Field

from runs.models import Run
from runs.services.outcome import storable
from triggers.waits import Completion, callback_signature_valid, waitpoint_cancel, waitpoint_complete
from waitpoints.models import WaitKind, Waitpoint

from . import schemas
from .auth import OPERATOR, VIEWER, principal
from .problems import Problem, ProblemOut, not_found
from .responses import json_response

router = Router(tags=["waitpoints"])
PROBLEMS = {code: ProblemOut for code in (401, 403, 404, 409, 422)}
CALLBACK_BODY_LIMIT = 256 * 1024
# A run parks once per attempt; this bounds a list that never needs pages.
MAX_LISTED = 200


class CompleteIn(schemas.Strict):
    payload: Any = Field(None, description="What the resumed run receives as payload (any JSON).")


class WaitpointOut(BaseModel):
    id: str
    run_id: int
    kind: str
    state: str
    event_type: str
    match: dict[str, Any]
    resume_at: datetime | None
    timeout_at: datetime
    reason: str
    created_at: datetime
    completed_at: datetime | None
    completed_by: str
    payload: Any
    resume_run_id: int | None
    completed: bool = Field(False, description="True when this request completed the waitpoint.")


def waitpoint_out(waitpoint: Waitpoint, *, completed: bool = False) -> WaitpointOut:
    return WaitpointOut(
        id=str(waitpoint.id), run_id=waitpoint.run_id, kind=waitpoint.kind, state=waitpoint.state,
        event_type=waitpoint.event_type, match=waitpoint.match, resume_at=waitpoint.resume_at,
        timeout_at=waitpoint.timeout_at, reason=waitpoint.reason, created_at=waitpoint.created_at,
        completed_at=waitpoint.completed_at, completed_by=waitpoint.completed_by, payload=waitpoint.payload,
        resume_run_id=waitpoint.resume_run_id, completed=completed)


def _found(ref: str, *, workspace_id: int | None = None) -> Waitpoint:
    try:
        key = uuid.UUID(ref)
    except ValueError:
        raise not_found(f"waitpoint {ref[:40]!r}") from None
    waitpoints = Waitpoint.objects.filter(id=key)
    if workspace_id is not None:
        waitpoints = waitpoints.filter(workspace_id=workspace_id)
    found = waitpoints.first()
    if found is None:
        raise not_found(f"waitpoint {ref[:40]!r}")
    return found


def _completed(waitpoint: Waitpoint, payload: Any, *, by: str) -> HttpResponse:
    if waitpoint.kind != WaitKind.TOKEN:
        raise Problem(409, "conflict", f"a {waitpoint.kind} wait is not completed by hand: it resumes by its "
                                       f"{'event' if waitpoint.kind == WaitKind.EVENT else 'timer'} or its timeout")
    # PostgreSQL's jsonb holds no NUL character: replaced, as in an agent's output.
    done: Completion = waitpoint_complete(waitpoint.id, payload=storable(payload), by=by, now=timezone.now())
    return json_response(waitpoint_out(done.waitpoint, completed=done.fresh))


class WaitpointsQuery(schemas.Strict):
    run: int = Field(ge=1, le=2**63 - 1, description="The run that parked: its waitpoints, newest first.")


@router.get("", response={200: list[WaitpointOut], **PROBLEMS}, summary="The waitpoints a run created")
def list_waitpoints(request: HttpRequest, query: Query[WaitpointsQuery]) -> HttpResponse:
    caller = principal(request)
    caller.require(VIEWER)
    if not Run.objects.filter(id=query.run, agent__workspace_id=caller.workspace_id).exists():
        raise not_found(f"run {query.run}")
    found = Waitpoint.objects.filter(run_id=query.run).order_by("-created_at")[:MAX_LISTED]
    return JsonResponse([waitpoint_out(w).model_dump(mode="json") for w in found], safe=False)


@router.get("/{waitpoint}", response={200: WaitpointOut, **PROBLEMS}, summary="A waitpoint and how it ended")
def get_waitpoint(request: HttpRequest, waitpoint: str) -> HttpResponse:
    caller = principal(request)
    found = _found(waitpoint, workspace_id=caller.workspace_id)
    caller.require(VIEWER)
    return json_response(waitpoint_out(found))


@router.post("/{waitpoint}/complete", response={200: WaitpointOut, **PROBLEMS},
             summary="Complete a token wait: its run resumes with the payload")
def complete_waitpoint(request: HttpRequest, waitpoint: str, body: CompleteIn) -> HttpResponse:
    caller = principal(request)
    found = _found(waitpoint, workspace_id=caller.workspace_id)
    caller.require(OPERATOR)
    return _completed(found, body.payload, by=f"api key {caller.key.id} (user {caller.user_id})")


@router.post("/{waitpoint}/cancel", response={200: WaitpointOut, **PROBLEMS},
             summary="Cancel a wait: its parked run ends cancelled, without a resume")
def cancel_waitpoint(request: HttpRequest, waitpoint: str) -> HttpResponse:
    caller = principal(request)
    found = _found(waitpoint, workspace_id=caller.workspace_id)
    caller.require(OPERATOR)
    done = waitpoint_cancel(found.id, now=timezone.now(), actor=caller.actor)
    return json_response(waitpoint_out(done.waitpoint, completed=done.fresh))


@router.post("/{waitpoint}/callback", auth=None, response={200: WaitpointOut, **PROBLEMS},
             summary="Complete a token wait through its pre-signed callback URL (no key; the body is the payload)")
def callback_waitpoint(request: HttpRequest, waitpoint: str, sig: str) -> HttpResponse:
    # The signature is checked before the lookup: a forged URL learns nothing about which ids exist.
    if not callback_signature_valid(waitpoint, sig):
        raise Problem(403, "signature-invalid", "the callback URL's signature does not match this waitpoint")
    found = _found(waitpoint)
    return _completed(found, _body(request), by="callback")


def _body(request: HttpRequest) -> Any:
    """The posted JSON as the payload; nothing posted: null."""
    raw = request.body
    if not raw.strip():
        return None
    if len(raw) > CALLBACK_BODY_LIMIT:
        raise Problem(422, "validation-error", f"the body is larger than {CALLBACK_BODY_LIMIT} bytes")
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Problem(422, "validation-error", "the body must be JSON (or empty)") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity: jsonb cannot hold them

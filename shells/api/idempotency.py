"""``Idempotency-Key`` on POSTs that create or trigger: the same key and body get the first answer.

The record is inserted (committed) before the work starts, so a concurrent
duplicate finds it: 409 while the first is in progress, then the stored
answer. The same key with a different request is 422. Answers below 500 are
kept 24 hours; a 5xx or a crash deletes the record, so the client's retry
does the work.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse

from shells.models import IdempotencyRecord, IdempotencyState

from .auth import Principal
from .problems import Problem

KEEP = timedelta(hours=24)
REPLAYED_HEADERS = ("ETag", "Location", "Content-Type")


def request_fingerprint(request: HttpRequest) -> str:
    parts = [(request.method or "").encode(), request.path.encode(), request.body]
    return hashlib.sha256(b"\n".join(parts)).hexdigest()


def idempotent(request: HttpRequest, principal: Principal, *, now: datetime,
               handler: Callable[[], HttpResponse]) -> HttpResponse:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return handler()
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise Problem(422, "validation-error", "Idempotency-Key must be 1 to 255 printable characters",
                      errors=[{"field": "Idempotency-Key", "message": "1 to 255 printable characters"}])
    record = _claim(principal, key, request_fingerprint(request), now=now)
    if record.state == IdempotencyState.DONE:
        return _replay(record)
    try:
        response = handler()
    except Problem as problem:
        response = problem.response()
    except BaseException:
        record.delete()
        raise
    if response.status_code >= 500:
        record.delete()
    else:
        _store(record, response)
    return response


def _claim(principal: Principal, key: str, fingerprint: str, *, now: datetime) -> IdempotencyRecord:
    """This request's record, new (in progress, ours) or the earlier one's (done); 409/422 otherwise."""
    scope = {"user_id": principal.user_id, "workspace_id": principal.workspace_id, "key": key}
    IdempotencyRecord.objects.filter(**scope, expires_at__lte=now).delete()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(**scope, request_hash=fingerprint, created_at=now,
                                                      expires_at=now + KEEP)
            return record
    except IntegrityError:
        pass
    earlier = IdempotencyRecord.objects.filter(**scope).first()
    if earlier is None:  # expired and purged between the two statements: try once more
        return _claim(principal, key, fingerprint, now=now)
    if earlier.request_hash != fingerprint:
        raise Problem(422, "idempotency-key-reused", "this Idempotency-Key was sent with a different request")
    if earlier.state != IdempotencyState.DONE:
        raise Problem(409, "request-in-progress", "the first request with this Idempotency-Key is still running",
                      headers={"Retry-After": "1"})
    return earlier


def _store(record: IdempotencyRecord, response: HttpResponse) -> None:
    headers = {name: response[name] for name in REPLAYED_HEADERS if name in response}
    IdempotencyRecord.objects.filter(id=record.id).update(
        state=IdempotencyState.DONE, status=response.status_code, body=response.content, headers=headers)


def _replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(bytes(record.body or b""), status=record.status or 200)
    for name, value in record.headers.items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response

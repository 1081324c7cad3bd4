"""Errors as ``application/problem+json`` (RFC 9457), with stable ``type`` slugs.

Every error the API answers goes through ``Problem``: a client branches on
``type`` (``https://tickwise.dev/problems/<slug>``), never on the wording.
"""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from pydantic import BaseModel

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://tickwise.dev/problems/"

TITLES = {
    "not-found": "Not found",
    "method-not-allowed": "This path does not take this method",
    "validation-error": "The request is not valid",
    "version-mismatch": "The object changed since this version",
    "precondition-required": "This write needs If-Match",
    "idempotency-key-reused": "This Idempotency-Key was used with another request",
    "request-in-progress": "A request with this Idempotency-Key is still in progress",
    "quota-exceeded": "Quota exceeded",
    "throttled": "Too many requests",
    "unauthenticated": "Authentication required",
    "forbidden": "Your role does not allow this",
    "feature-disabled": "This feature is disabled",
    "conflict": "The request conflicts with the object's state",
    "signature-invalid": "The delivery's signature does not verify",
    "timestamp-invalid": "The delivery's signed timestamp is unreadable or outside the tolerance",
    "malformed-event": "The delivery cannot be read as an event",
    "source-disabled": "This webhook source is disabled",
    "payload-too-large": "The body is larger than this source accepts",
}


class FieldError(BaseModel):
    field: str
    message: str


class ProblemOut(BaseModel):
    """The problem document (RFC 9457), as the OpenAPI schema shows it."""

    type: str
    title: str
    status: int
    detail: str = ""
    errors: list[FieldError] | None = None
    current_version: int | None = None


class Problem(Exception):
    def __init__(self, status: int, slug: str, detail: str = "", *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail or TITLES[slug])
        self.status, self.slug, self.detail, self.extra = status, slug, detail, extra
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        body = {"type": TYPE_BASE + self.slug, "title": TITLES[self.slug], "status": self.status,
                "detail": self.detail, **self.extra}
        response = JsonResponse(body, status=self.status, content_type=CONTENT_TYPE)
        for name, value in self.headers.items():
            response[name] = value
        return response


def problem_response(request: HttpRequest, problem: Problem) -> JsonResponse:
    return problem.response()


def not_found(what: str) -> Problem:
    return Problem(404, "not-found", f"no {what} here")


def field_errors(errors: dict[str, list[str]]) -> Problem:
    """A model's ``ValidationError.message_dict`` as a validation problem, one entry per message."""
    listed = [{"field": field, "message": message} for field, messages in errors.items() for message in messages]
    return Problem(422, "validation-error", "; ".join(f"{e['field']}: {e['message']}" for e in listed),
                   errors=listed)

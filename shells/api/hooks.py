"""``POST /hooks/{slug}``: signed third-party webhooks, stored once, answered at once.

No API key: the signature is the credential (``events.signatures``). The view
stores the event and returns; routing runs after commit in the ``events.route``
task. Answers (docs/events.md): 202 new, 200 a repeat (never an error: senders
retry on errors), 401 no valid signature, 400 a bad timestamp or a body that
cannot be an event, 404 no such source, 410 a disabled source, 413 a body
above the source's limit, 429 a flood (with ``Retry-After``).
"""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from ninja import Router
from pydantic import BaseModel, Field

from events.delivery import delivery_draft
from events.models import WebhookSource
from events.services.ingest import EventMalformed, Ingested, Throttled, event_ingest
from events.signatures import DeliveryMalformed, SignatureRefused, TimestampRefused, delivery_verify

from .problems import Problem, ProblemOut

router = Router(tags=["events"], auth=None)
PROBLEMS = {code: ProblemOut for code in (400, 401, 404, 410, 413, 429)}


class AcceptedOut(BaseModel):
    id: int = Field(description="The event in the ledger: GET /api/v1/events/{id}.")
    event_id: str = Field(description="The sender's id for the event.")
    duplicate: bool = Field(description="true: this event was already stored (200); false: stored now (202).")


def ingested_response(ingested: Ingested, event_id: str) -> JsonResponse:
    return JsonResponse({"id": ingested.id, "event_id": event_id, "duplicate": ingested.duplicate},
                         status=200 if ingested.duplicate else 202)


def malformed(field: str, message: str) -> Problem:
    return Problem(400, "malformed-event", f"{field}: {message}", errors=[{"field": field, "message": message}])


def throttled(error: Throttled) -> Problem:
    return Problem(429, "throttled", str(error), headers={"Retry-After": str(error.retry_after)})


def _source(slug: str) -> WebhookSource:
    try:  # read on every delivery: disabling a source or retiring a secret takes effect at once
        source = WebhookSource.objects.get(slug=slug)
    except WebhookSource.DoesNotExist:
        raise Problem(404, "not-found", f"no webhook source {slug[:100]!r}") from None
    if not source.enabled:
        raise Problem(410, "source-disabled", f"webhook source {source.slug!r} is disabled")
    return source


def _body(request: HttpRequest, limit: int) -> bytes:
    """The raw body, refused before it is read when its declared length is over the limit."""
    if not request.META.get("CONTENT_LENGTH") and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        # Django reads a body up to its Content-Length only: a chunked one would look empty (and unsigned).
        raise malformed("Content-Length", "send the body with a Content-Length; chunked bodies are not read")
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > limit:
        raise Problem(413, "payload-too-large", f"this source accepts bodies up to {limit} bytes")
    body = request.read(limit + 1)
    if len(body) > limit:  # the stream is bounded by the declared length; kept as a second line anyway
        raise Problem(413, "payload-too-large", f"this source accepts bodies up to {limit} bytes")
    return body


@router.post("/{slug}", response={200: AcceptedOut, 202: AcceptedOut, **PROBLEMS}, summary="Receive a signed webhook")
def receive(request: HttpRequest, slug: str) -> HttpResponse:
    now = timezone.now()
    source = _source(slug)
    body = _body(request, source.body_limit_bytes)
    headers = dict(request.headers)
    try:
        verified = delivery_verify(source, body=body, headers=headers, now=now)
        draft = delivery_draft(source, verified, body=body, headers=headers)
        ingested = event_ingest(draft, now=now, rate_per_minute=source.rate_per_minute)
    except SignatureRefused:
        raise Problem(401, "signature-invalid", "no valid signature for this source") from None
    except TimestampRefused as error:
        raise Problem(400, "timestamp-invalid", str(error)) from None
    except DeliveryMalformed as error:
        raise Problem(400, "malformed-event", str(error)) from None
    except EventMalformed as error:
        raise malformed(error.field, error.message) from None
    except Throttled as error:
        raise throttled(error) from None
    return ingested_response(ingested, draft.event_id)

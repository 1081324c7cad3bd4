"""The floor ingest is measured against: a plain Django view that only inserts the same row.

It finds the source by slug (as the hook endpoint does), parses the JSON body
and inserts the event with the ORM: the same columns, the same payload hash,
no signature check, no duplicate check, no fast path, no routing message.
"""
from __future__ import annotations

import hashlib
import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from events.models import InboundEvent, WebhookSource


@csrf_exempt
@require_POST
def hook_insert(request: HttpRequest, slug: str) -> HttpResponse:
    source = WebhookSource.objects.get(slug=slug)
    payload = json.loads(request.body)
    canonical = json.dumps(payload.get("data"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    event = InboundEvent.objects.create(
        workspace_id=source.workspace_id, source=source, event_id=request.headers["webhook-id"],
        type=payload["type"], received_at=timezone.now(), payload=payload,
        payload_hash=hashlib.sha256(canonical.encode()).hexdigest(), chain_id="0" * 32)
    return JsonResponse({"id": event.pk, "event_id": event.event_id, "duplicate": False}, status=202)

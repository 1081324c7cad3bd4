"""A verified webhook delivery read as an event: its payload, type, subject and time.

- The payload is the JSON body as sent (GitHub's form-encoded deliveries: the
  JSON in their ``payload`` field). A source with ``require_json`` off keeps a
  body that is not JSON as ``{"body": "<text>"}``.
- The type is ``github.<X-GitHub-Event>`` for GitHub; otherwise the string at
  the source's ``type_field`` (a dotted path, default ``type``), or the source's
  slug when the body has none.
- The subject is the body's top-level ``subject`` string, when there is one.
- The time it occurred: the signed ``webhook-timestamp`` (Standard Webhooks).
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from .models import SourceKind, WebhookSource
from .services.ingest import EventDraft, EventMalformed, payload_canonical
from .signatures import Verified

_TYPE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def payload_parse(source: WebhookSource, body: bytes, content_type: str) -> Any:
    if source.kind == SourceKind.GITHUB and content_type.startswith("application/x-www-form-urlencoded"):
        fields = parse_qs(body.decode("utf-8", "replace"))
        body = (fields.get("payload") or [""])[0].encode()
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        if source.require_json:
            raise EventMalformed("body", "is not JSON, and this source requires JSON") from None
        payload = {"body": body.decode("utf-8", "replace")}
    payload_canonical(payload)  # refuses text PostgreSQL cannot store, before anything is written
    return payload


def _at_path(payload: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(payload, Mapping):
            return None
        payload = payload.get(part)
    return payload


def event_type_valid(value: str, field: str) -> str:
    if not 1 <= len(value) <= 200 or not _TYPE.fullmatch(value):
        raise EventMalformed(field, "must be 1 to 200 characters of dot-delimited words (deploy.finished)")
    return value


def event_type_of(source: WebhookSource, verified: Verified, payload: Any) -> str:
    if verified.event_type:
        return event_type_valid(verified.event_type, "X-GitHub-Event")
    found = _at_path(payload, source.type_field) if source.type_field else None
    if found is None:
        return source.slug
    if not isinstance(found, str):
        raise EventMalformed(source.type_field, "the event type must be a string")
    return event_type_valid(found, source.type_field)


def delivery_draft(source: WebhookSource, verified: Verified, *, body: bytes,
                   headers: Mapping[str, str]) -> EventDraft:
    payload = payload_parse(source, body, headers.get("Content-Type", headers.get("content-type", "")))
    subject = payload.get("subject") if isinstance(payload, Mapping) else None
    return EventDraft(
        workspace_id=source.workspace_id or 0, source_id=source.pk, event_id=verified.delivery_id,
        type=event_type_of(source, verified, payload), payload=payload,
        subject=subject if isinstance(subject, str) else "", occurred_at=verified.signed_at,
        headers=headers, secret_env=verified.secret_env, id_header=source.id_header)

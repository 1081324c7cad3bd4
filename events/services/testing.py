"""The admin's "Send test event": a ``tickwise.test`` event, signed the way the source's sender signs.

With the server's own URL known (``TICKWISE_PUBLIC_URL``) the event is POSTed
to the source's hook URL, so the whole path (HTTP, signature, ledger) is
exercised; without one, the same signed request is verified and stored
through the services directly, and the result says so.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

import httpx

from ..delivery import delivery_draft
from ..models import WebhookSource
from ..signatures import SignatureRefused, delivery_sign, delivery_verify, secrets_active
from .ingest import event_ingest

TIMEOUT = 10.0


@dataclass(frozen=True)
class TestSent:
    ok: bool
    message: str


def _test_body(source: WebhookSource, *, now: datetime, sent_by: str) -> bytes:
    return json.dumps({"type": "tickwise.test", "subject": source.slug,
                       "data": {"sent_by": sent_by, "at": now.isoformat()}}).encode()


def source_send_test(source: WebhookSource, *, now: datetime, sent_by: str, public_url: str) -> TestSent:
    secrets = secrets_active(source, now=now)
    if not secrets:
        return TestSent(False, f"{source.slug}: no active secret (is its variable set in this process?)")
    body, delivery = _test_body(source, now=now, sent_by=sent_by), f"test_{uuid.uuid4().hex}"
    headers = delivery_sign(source, secrets[0], body, now=now, delivery_id=delivery)
    if public_url:
        return _post(source, public_url, body, headers, secrets[0].env)
    try:
        verified = delivery_verify(source, body=body, headers=headers, now=now)
    except SignatureRefused:
        return TestSent(False, f"{source.slug}: the test event's signature did not verify")
    stored = event_ingest(delivery_draft(source, verified, body=body, headers=headers), now=now)
    return TestSent(True, f"{source.slug}: no server URL is set (TICKWISE_PUBLIC_URL), so the test event was "
                          f"stored through the service directly, without HTTP: event {stored.id}, signed with "
                          f"{secrets[0].env}")


def _post(source: WebhookSource, public_url: str, body: bytes, headers: dict[str, str], env: str) -> TestSent:
    url = f"{public_url.rstrip('/')}/api/v1/hooks/{source.slug}"
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=TIMEOUT)
    except httpx.HTTPError as error:
        return TestSent(False, f"{source.slug}: POST {url} failed: {error}")
    ok = response.status_code in (200, 202)
    return TestSent(ok, f"{source.slug}: POST {url} answered {response.status_code} (signed with {env}): "
                        f"{response.text[:300]}")

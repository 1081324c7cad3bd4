"""Store an inbound event once, and hand it to routing after commit. No agent work happens here.

``event_ingest`` is the one write path for webhooks and first-party events:
the Redis fast path answers a known repeat, the per-source rate limit refuses
a flood, and otherwise one ``INSERT … ON CONFLICT DO NOTHING`` stores the
event or finds the original (``event_once_per_source``). See ``events.fastpath``.

Causation arrives in the chain headers a Tickwise sender echoes
(``tickwise-chain-id``, ``tickwise-depth``, ``tickwise-actor``: an agent id,
``tickwise-run``: a run id). The event's depth is the header's plus one; an
actor or a parent run is kept only when it belongs to the event's workspace
(a sender cannot blame another tenant's agent).
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

from runs.models import Run
from schedules.models import Agent

from .. import fastpath
from ..matching import event_data
from ..models import InboundEvent
from ..publish import event_route_publish_on_commit
from ..sql import event_insert_once

# Request headers kept on the event (lower case): what identifies and types a
# delivery and its causation. Signatures, cookies and credentials are never kept.
ALLOWED_HEADERS = (
    "content-type", "user-agent", "webhook-id", "webhook-timestamp",
    "x-github-delivery", "x-github-event", "x-github-hook-id",
    "x-github-hook-installation-target-id", "x-github-hook-installation-target-type",
    "tickwise-chain-id", "tickwise-depth", "tickwise-actor", "tickwise-run", "idempotency-key",
)
MAX_DEPTH = 32767  # PositiveSmallIntegerField
_CHAIN = re.compile(r"[A-Za-z0-9_-]{1,32}")
_NUMBER = re.compile(r"\d{1,18}")


class EventMalformed(Exception):
    """A signed (or authenticated) request whose content cannot be stored as an event: 400."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limit reached; retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class EventDraft:
    workspace_id: int
    source_id: int | None
    event_id: str
    type: str
    payload: Any
    subject: str = ""
    occurred_at: datetime | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    secret_env: str = ""
    posted_by_id: int | None = None
    id_header: str = ""  # the source's own id header, kept with the allow-listed ones

    @property
    def scope(self) -> str:
        return f"s{self.source_id}" if self.source_id is not None else f"w{self.workspace_id}"


@dataclass(frozen=True)
class Ingested:
    id: int  # the stored event's primary key (the original's, for a duplicate)
    duplicate: bool


@dataclass(frozen=True)
class EventCausation:
    chain_id: str
    depth: int = 0
    actor_id: int | None = None
    parent_run_id: int | None = None


def payload_canonical(payload: Any) -> bytes:
    """The payload as canonical JSON (sorted keys, no spaces, UTF-8); refuses what PostgreSQL cannot store."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if "\x00" in text or "\\u0000" in text:
        raise EventMalformed("body", "contains a NUL character (\\u0000), which the ledger cannot store")
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise EventMalformed("body", "contains a lone surrogate (\\ud800-\\udfff), which is not text") from None


def payload_digest(payload: Any) -> str:
    """What the debounce compares: the SHA-256 of the event's data (an envelope's ``data``, else the body).

    Not of the whole body: an envelope also carries its id and timestamp, which
    differ between two deliveries of the same content.
    """
    payload_canonical(payload)  # the whole body must be storable, not only its data
    return hashlib.sha256(payload_canonical(event_data(payload))).hexdigest()


def headers_kept(headers: Mapping[str, str], *, id_header: str = "") -> dict[str, str]:
    allowed = {*ALLOWED_HEADERS, id_header.lower()} - {""}
    return {name.lower(): value[:500] for name, value in headers.items() if name.lower() in allowed}


def _header_number(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    if not _NUMBER.fullmatch(raw.strip()):
        raise EventMalformed(name, f"must be a non-negative integer, got {raw[:40]!r}")
    return int(raw.strip())


def causation_from_headers(headers: Mapping[str, str], *, workspace_id: int) -> EventCausation:
    lower = {name.lower(): value for name, value in headers.items()}
    chain = lower.get("tickwise-chain-id", "").strip()
    if chain and not _CHAIN.fullmatch(chain):
        raise EventMalformed("tickwise-chain-id", "must be 1 to 32 letters, digits, '-' or '_'")
    depth, actor_ref, run_ref = (_header_number(lower, name) for name in
                                 ("tickwise-depth", "tickwise-actor", "tickwise-run"))
    parent = (Run.objects.filter(pk=run_ref, agent__workspace_id=workspace_id)
              .values("id", "agent_id", "chain_id", "event_depth").first() if run_ref else None)
    actor_id = (Agent.objects.filter(pk=actor_ref, workspace_id=workspace_id).values_list("id", flat=True).first()
                if actor_ref else None)
    if depth is None and parent is not None:
        depth = parent["event_depth"]
    return EventCausation(
        chain_id=chain or (parent["chain_id"] if parent and parent["chain_id"] else uuid.uuid4().hex),
        depth=min(MAX_DEPTH, depth + 1) if depth is not None else 0,
        actor_id=actor_id or (parent["agent_id"] if parent else None),
        parent_run_id=parent["id"] if parent else None)


def _values(draft: EventDraft, causation: EventCausation, *, now: datetime) -> dict[str, Any]:
    return {
        "workspace_id": draft.workspace_id, "source_id": draft.source_id, "event_id": draft.event_id,
        "type": draft.type, "subject": draft.subject[:200], "occurred_at": draft.occurred_at, "received_at": now,
        "payload": draft.payload, "payload_hash": payload_digest(draft.payload),
        "headers": headers_kept(draft.headers, id_header=draft.id_header), "secret_env": draft.secret_env,
        "posted_by_id": draft.posted_by_id, "chain_id": causation.chain_id, "depth": causation.depth,
        "actor_id": causation.actor_id, "parent_run_id": causation.parent_run_id, "outcome": "pending",
        "routing_error": "",
    }


def _original(draft: EventDraft) -> int:
    return InboundEvent.objects.filter(workspace_id=draft.workspace_id, source_id=draft.source_id,
                                       event_id=draft.event_id).values_list("id", flat=True).get()


def event_ingest(draft: EventDraft, *, now: datetime, rate_per_minute: int = 0) -> Ingested:
    """Store the event once; a repeat returns the original. Raises ``Throttled`` or ``EventMalformed``."""
    admission = fastpath.delivery_admit(draft.scope, draft.event_id, rate_per_minute)
    if admission.seen_id is not None:
        return Ingested(id=admission.seen_id, duplicate=True)
    if not admission.allowed:
        raise Throttled(admission.retry_after)
    # One statement, its own transaction (no BEGIN/COMMIT round trips): the routing
    # message and the fast-path key go after it has committed, or after the caller's
    # transaction does when there is one.
    stored = event_insert_once(_values(draft, causation_from_headers(draft.headers, workspace_id=draft.workspace_id),
                                       now=now))
    if stored is not None:
        event_route_publish_on_commit(stored)
    found = stored if stored is not None else _original(draft)
    # Only once the row has committed: a key must never stand for an event that was not stored.
    transaction.on_commit(lambda: fastpath.seen_mark(draft.scope, draft.event_id, found))
    return Ingested(id=found, duplicate=stored is None)

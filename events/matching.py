"""Which events a subscription takes, and what it reads from them.

A subscription matches an event by type (exact, or ``prefix.*`` for every
type under ``prefix.``) and by payload equalities on dotted paths over the
event's view (``{"data.repo": "web"}``). Its session key and its input
template read the same view, so one vocabulary names an event's parts
everywhere: ``type``, ``id``, ``subject``, ``source``, ``occurred_at``,
``received_at``, ``chain_id``, ``depth``, ``data`` and ``payload``.

``payload`` is the body as delivered. ``data`` is what the event is about:
for an envelope (a JSON object with ``type`` and ``data``, as first-party
events and Standard Webhooks senders send) its ``data``; otherwise (GitHub,
plain HMAC senders) the whole payload. So ``data.repo`` reads the same for
``{"type": "push", "data": {"repo": "web"}}`` and for ``{"repo": "web"}``.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from core.inputs import EVENT_FIELDS, EVENT_OBJECTS, MISSING, dotted_get

from .models import InboundEvent

# Dot-delimited words; a subscription may end with ``.*`` (every type under the prefix).
_TYPE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_PATH = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
Scalar = str | int | float | bool | None


class SubscriptionInvalid(ValueError):
    """A subscription's definition cannot be saved; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def event_view(event: InboundEvent) -> dict[str, Any]:
    """The event as subscriptions see it (match paths, session keys, templates)."""
    return {
        "type": event.type, "id": event.event_id, "subject": event.subject,
        "source": event.source.slug if event.source_id is not None and event.source else "",
        "occurred_at": event.occurred_at.isoformat() if event.occurred_at else "",
        "received_at": event.received_at.isoformat(), "chain_id": event.chain_id, "depth": event.depth,
        "data": event_data(event.payload), "payload": event.payload,
    }


def event_data(payload: object) -> object:
    """An envelope's ``data``, or the payload itself."""
    if isinstance(payload, dict) and "type" in payload and "data" in payload:
        return payload["data"]
    return payload


def type_matches(pattern: str, event_type: str) -> bool:
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])  # the prefix keeps its dot: "github." not "githubx"
    return pattern == event_type


def payload_matches(match: Mapping[str, Any], view: Mapping[str, Any]) -> bool:
    """Every dotted path holds its value; a missing path never matches (not even ``null``)."""
    return all(_same(dotted_get(view, path), expected) for path, expected in match.items())


def _same(actual: object, expected: object) -> bool:
    # JSON has one number type but Python two bools-as-ints: ``true`` must not equal ``1``.
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    return actual is not MISSING and actual == expected


def session_value(session_key: str, view: Mapping[str, Any]) -> object:
    """The value naming the event's session, or ``MISSING`` (also for null or empty)."""
    value = dotted_get(view, session_key)
    return MISSING if value is None or value == "" else value


def session_id_for(subscription_id: int, value: object) -> str:
    """Stable: every event with the same key value continues the same session of this subscription."""
    material = f"subscription:{subscription_id}|{json.dumps(value, sort_keys=True)}"
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def event_type_check(pattern: str) -> None:
    """``deploy.finished`` or ``github.*``; anything else names what is wrong."""
    if not pattern:
        raise SubscriptionInvalid("event_type", "required (e.g. deploy.finished or github.*)")
    body = pattern[:-2] if pattern.endswith(".*") else pattern
    if not _TYPE.fullmatch(body):
        raise SubscriptionInvalid(
            "event_type", f"{pattern!r} is not a dot-delimited type (letters, digits, _ and -) or a prefix "
                          "ending in .* (github.*)")


def path_check(field: str, path: object) -> None:
    """A dotted path over the event view: ``data.repo``, ``subject``, …"""
    if not isinstance(path, str) or not _PATH.fullmatch(path):
        raise SubscriptionInvalid(field, f"{path!r} is not a dotted path (e.g. data.repo)")
    head, _, rest = path.partition(".")
    if head not in EVENT_FIELDS:
        raise SubscriptionInvalid(field, f"{path!r} does not start with an event field "
                                         f"({', '.join(sorted(EVENT_FIELDS))})")
    if rest and head not in EVENT_OBJECTS:
        raise SubscriptionInvalid(field, f"{path!r}: only data and payload have inner paths")


def match_check(match: object) -> None:
    """An object of dotted paths to scalars (strings, numbers, booleans, null)."""
    if not isinstance(match, dict):
        raise SubscriptionInvalid("match", 'must be an object of dotted paths to values, e.g. {"data.repo": "web"}')
    for path, value in match.items():
        path_check("match", path)
        if not isinstance(value, Scalar):
            raise SubscriptionInvalid("match", f"{path}: the value must be a string, number, boolean or null, "
                                               f"not {type(value).__name__}")
        if isinstance(value, str) and not _storable(value):
            raise SubscriptionInvalid("match", f"{path}: the value holds a NUL or a lone surrogate, "
                                               "which no event can carry")


def _storable(text: str) -> bool:
    """PostgreSQL's JSON refuses NUL and text that is not UTF-8 (a lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text

"""Is this delivery from the sender it names? One verifier per source kind.

- ``standard`` (Standard Webhooks): ``webhook-id``, ``webhook-timestamp`` (Unix
  seconds) and ``webhook-signature`` (space-separated ``v1,<base64>``, one per
  secret the sender signs with); the signed content is ``id.timestamp.body``,
  computed by the ``standardwebhooks`` package; secrets are ``whsec_<base64>``.
- ``github``: ``X-Hub-Signature-256: sha256=<hex>``, HMAC-SHA256 of the raw
  body; ``X-GitHub-Delivery`` is the delivery id, ``X-GitHub-Event`` the type.
  GitHub signs no timestamp, so replays are caught by the ledger, not here.
- ``hmac``: the hex HMAC-SHA256 of the raw body in ``source.signature_header``
  (an optional ``sha256=`` prefix); the id in ``source.id_header``, or the
  body's SHA-256 when the source names no id header.

Every active secret of the source is tried (rotation: old and new both verify
until the old one's ``retire_at``), each comparison constant-time; the caller
learns which environment variable matched, the sender never learns which one
failed. A missing or wrong signature is ``SignatureRefused`` (401); a timestamp
that cannot be read, or lies outside the tolerance either way, is
``TimestampRefused`` (400). The timestamp's format is checked before the
signature (nothing can be computed without it), its freshness after (a forger
learns nothing about our clock).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from standardwebhooks.webhooks import Webhook

from .models import SourceKind, WebhookSource

log = logging.getLogger("tickwise.events")

MAX_ID = 200  # InboundEvent.event_id


class SignatureRefused(Exception):
    """No active secret verifies the delivery (or it carries no signature)."""


class TimestampRefused(Exception):
    """The signed timestamp is unreadable, stale or in the future."""


class DeliveryMalformed(Exception):
    """Signed, but a header the kind needs is missing or unusable."""


@dataclass(frozen=True)
class Verified:
    secret_env: str
    delivery_id: str  # "": none in the request (the ingest falls back to a hash of the body)
    event_type: str = ""  # "": read from the body
    signed_at: datetime | None = None


@dataclass(frozen=True)
class Secret:
    env: str
    value: str


def _retired(entry: Mapping[str, object], *, now: datetime) -> bool:
    retire_at = entry.get("retire_at")
    if not retire_at:
        return False
    try:
        when = datetime.fromisoformat(str(retire_at).replace("Z", "+00:00"))
    except ValueError:
        log.warning("secret %s has an unreadable retire_at %r: treated as retired", entry.get("env"), retire_at)
        return True
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when <= now


def secrets_active(source: WebhookSource, *, now: datetime,
                   environ: Mapping[str, str] = os.environ) -> list[Secret]:
    """The source's secrets that verify now: the variable is set, and not retired yet."""
    active = []
    for entry in source.secrets or []:
        if not isinstance(entry, Mapping):
            continue
        name = str(entry.get("env") or "")
        value = environ.get(name, "") if name else ""
        if value and not _retired(entry, now=now):
            active.append(Secret(env=name, value=value))
    return active


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _hex_hmac(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()


def _first_match(secrets: list[Secret], matches: Callable[[Secret], bool]) -> str:
    for secret in secrets:
        if matches(secret):
            return secret.env
    raise SignatureRefused("no valid signature")


# --- standard ------------------------------------------------------------------------


def _standard_signatures(header: str) -> list[bytes]:
    """The ``v1`` signatures of a ``webhook-signature`` header; other versions and junk are skipped."""
    found = []
    for part in header.split(" "):
        version, _, encoded = part.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def _standard_expected(secret: Secret, msg_id: str, signed_at: datetime, body: str) -> bytes | None:
    try:
        signature = Webhook(secret.value).sign(msg_id=msg_id, timestamp=signed_at, data=body)
    except Exception as error:  # the package raises several kinds for a value that is not whsec_<base64>
        log.warning("secret %s is not a whsec_<base64> secret (%s): skipped", secret.env, type(error).__name__)
        return None
    return base64.b64decode(signature.partition(",")[2])


def _standard_timestamp(raw: str) -> datetime:
    if not raw.isdigit() or len(raw) > 12:
        raise TimestampRefused(f"webhook-timestamp must be Unix seconds, got {raw[:40]!r}")
    return datetime.fromtimestamp(int(raw), tz=UTC)


def _verify_standard(source: WebhookSource, secrets: list[Secret], body: bytes, headers: dict[str, str],
                     now: datetime) -> Verified:
    msg_id, raw_ts, header = (headers.get(n, "") for n in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and raw_ts and header):
        raise SignatureRefused("webhook-id, webhook-timestamp and webhook-signature are required")
    signed_at = _standard_timestamp(raw_ts.strip())
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise DeliveryMalformed("the body is not UTF-8") from None
    offered = _standard_signatures(header)

    def matches(secret: Secret) -> bool:
        expected = _standard_expected(secret, msg_id, signed_at, text)
        return expected is not None and any(hmac.compare_digest(expected, sig) for sig in offered)
    env = _first_match(secrets, matches)
    _check_fresh(signed_at, tolerance=source.tolerance_seconds, now=now)
    if len(msg_id) > MAX_ID:
        raise DeliveryMalformed(f"webhook-id is longer than {MAX_ID} characters")
    return Verified(secret_env=env, delivery_id=msg_id, signed_at=signed_at)


def _check_fresh(signed_at: datetime, *, tolerance: int, now: datetime) -> None:
    window = timedelta(seconds=tolerance)
    if signed_at < now - window:
        raise TimestampRefused(f"webhook-timestamp is more than {tolerance} s old")
    if signed_at > now + window:
        raise TimestampRefused(f"webhook-timestamp is more than {tolerance} s in the future")


# --- github and hmac ---------------------------------------------------------------------


def _hex_signature(value: str) -> bytes:
    value = value.strip()
    if value.lower().startswith("sha256="):
        value = value[len("sha256="):]
    return value.lower().encode()


def _verify_github(source: WebhookSource, secrets: list[Secret], body: bytes, headers: dict[str, str],
                   now: datetime) -> Verified:
    header = headers.get("x-hub-signature-256", "")
    if not header.startswith("sha256="):
        raise SignatureRefused("X-Hub-Signature-256: sha256=<hex> is required")
    offered = _hex_signature(header)
    env = _first_match(secrets, lambda s: hmac.compare_digest(_hex_hmac(s.value, body), offered))
    delivery, event = headers.get("x-github-delivery", "").strip(), headers.get("x-github-event", "").strip()
    if not delivery or len(delivery) > MAX_ID:
        raise DeliveryMalformed("X-GitHub-Delivery is missing or too long")
    if not event or len(event) > 100:
        raise DeliveryMalformed("X-GitHub-Event is missing or too long")
    return Verified(secret_env=env, delivery_id=delivery, event_type=f"github.{event}")


def _verify_hmac(source: WebhookSource, secrets: list[Secret], body: bytes, headers: dict[str, str],
                 now: datetime) -> Verified:
    header = headers.get((source.signature_header or "X-Signature").lower(), "")
    if not header:
        raise SignatureRefused(f"{source.signature_header or 'X-Signature'} is required")
    offered = _hex_signature(header)
    env = _first_match(secrets, lambda s: hmac.compare_digest(_hex_hmac(s.value, body), offered))
    delivery = ""
    if source.id_header:
        delivery = headers.get(source.id_header.lower(), "").strip()
        if not delivery or len(delivery) > MAX_ID:
            raise DeliveryMalformed(f"{source.id_header} is missing or too long")
    return Verified(secret_env=env, delivery_id=delivery or hashlib.sha256(body).hexdigest())


VERIFIERS = {SourceKind.STANDARD: _verify_standard, SourceKind.GITHUB: _verify_github,
             SourceKind.HMAC: _verify_hmac}


def delivery_verify(source: WebhookSource, *, body: bytes, headers: Mapping[str, str], now: datetime,
                    environ: Mapping[str, str] = os.environ) -> Verified:
    """Which active secret signed this delivery, and what it says about itself; raises when none did."""
    secrets = secrets_active(source, now=now, environ=environ)
    verifier = VERIFIERS[SourceKind(source.kind)]
    # With no active secret every delivery is refused (the same 401 as a forgery:
    # a sender must not learn that a source's secrets lapsed).
    return verifier(source, secrets, body, _lower(headers), now)


def delivery_sign(source: WebhookSource, secret: Secret, body: bytes, *, now: datetime,
                  delivery_id: str, github_event: str = "ping") -> dict[str, str]:
    """The headers a sender of this source's kind would send with ``body`` (the admin's test event)."""
    if source.kind == SourceKind.STANDARD:
        signature = Webhook(secret.value).sign(msg_id=delivery_id, timestamp=now, data=body.decode())
        return {"webhook-id": delivery_id, "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signature, "content-type": "application/json"}
    digest = _hex_hmac(secret.value, body).decode()
    if source.kind == SourceKind.GITHUB:
        return {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Delivery": delivery_id,
                "X-GitHub-Event": github_event, "content-type": "application/json"}
    headers = {source.signature_header or "X-Signature": f"sha256={digest}", "content-type": "application/json"}
    if source.id_header:
        headers[source.id_header] = delivery_id
    return headers

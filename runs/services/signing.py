"""Standard Webhooks signing for outbound completion webhooks (the ``standardwebhooks`` package)."""
from __future__ import annotations

import base64
import binascii
from datetime import datetime

from standardwebhooks import Webhook

PREFIX = "whsec_"
# The Standard Webhooks spec: secrets of 24 to 64 random bytes.
MIN_BYTES, MAX_BYTES = 24, 64


class SigningSecretError(Exception):
    """The configured secret is missing or malformed: a configuration error, named."""


def signer(secret: str) -> Webhook:
    """A signer for ``secret`` (``whsec_<base64>``); ``SigningSecretError`` says what is wrong with it."""
    if not secret:
        raise SigningSecretError("TICKWISE_WEBHOOK_SECRET is not set")
    encoded = secret.removeprefix(PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as error:
        raise SigningSecretError(f"TICKWISE_WEBHOOK_SECRET is not base64 after {PREFIX!r}: {error}") from None
    if not MIN_BYTES <= len(key) <= MAX_BYTES:
        raise SigningSecretError(f"TICKWISE_WEBHOOK_SECRET decodes to {len(key)} bytes; "
                                 f"Standard Webhooks asks for {MIN_BYTES} to {MAX_BYTES}")
    return Webhook(key)


def signature_headers(webhook: Webhook, *, webhook_id: str, body: str, at: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt (the timestamp is the attempt's own)."""
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": webhook.sign(msg_id=webhook_id, timestamp=at, data=body)}

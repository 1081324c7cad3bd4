"""Deterministic jitter: the same (key, tick) gives the same offset on every node.

The offset is a hash, never ``random``: beat on any node, a retry, a preview and
the API must all agree on when a tick fires.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from hashlib import blake2b

from .instants import SECOND

ZERO = timedelta(0)


def jitter_offset(key: str, at: datetime, jitter: timedelta) -> timedelta:
    """Whole seconds in ``[0, jitter)`` from blake2b-64 of ``"{key}|{at.isoformat()}"``.

    ``at`` is the tick's UTC instant, so the input reads like
    ``"42|2026-03-08T07:30:00+00:00"``. A jitter under one second gives 0.
    """
    if jitter <= ZERO:
        return ZERO
    slots = -(-jitter // SECOND)  # ceil: every whole second strictly below jitter
    digest = blake2b(f"{key}|{at.isoformat()}".encode(), digest_size=8).digest()
    return timedelta(seconds=int.from_bytes(digest, "big") % slots)

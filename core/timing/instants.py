"""Conversions between aware datetimes and whole epoch seconds.

The engine does its arithmetic on integer seconds: every cron tick is a whole
local minute and every tz offset a whole number of seconds, so integers are
exact and much cheaper than datetime arithmetic in the hot path.
"""
from __future__ import annotations

from datetime import UTC as UTC  # re-exported: the engine's one UTC
from datetime import datetime, timedelta

from .errors import TimingError

SECOND = timedelta(seconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_NAIVE = datetime(1970, 1, 1)
# Instants are clamped to this range so that local wall times (instant plus an
# offset of up to a day) never overflow ``datetime``.
MIN_SECS = (datetime(2, 1, 1, tzinfo=UTC) - EPOCH) // SECOND
MAX_SECS = (datetime(9998, 1, 1, tzinfo=UTC) - EPOCH) // SECOND


def require_aware(name: str, value: datetime | None) -> None:
    """Raise unless ``value`` is None or a timezone-aware datetime."""
    if value is None:
        return
    if not isinstance(value, datetime):
        raise TimingError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise TimingError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


def floor_secs(value: datetime) -> int:
    """Whole epoch seconds at or before an aware instant."""
    return (value - EPOCH) // SECOND


def utc_from_secs(secs: int) -> datetime:
    return EPOCH + timedelta(seconds=secs)


def naive_from_secs(secs: int) -> datetime:
    """The naive wall time for local epoch seconds (UTC seconds plus offset)."""
    return EPOCH_NAIVE + timedelta(seconds=secs)


def secs_from_naive(wall: datetime) -> int:
    return (wall - EPOCH_NAIVE) // SECOND

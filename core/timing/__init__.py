"""The fire-time engine: when a schedule's ticks fall, in UTC, under its zone's DST rules.

Pure: no Django, no clock. Aware datetimes in, aware UTC datetimes out; naive
datetimes raise ``TimingError``. The contract is documented in ``docs/time.md``.
"""
from __future__ import annotations

from .cron import validate_cron
from .errors import TimingError
from .plan import MAX_TICKS, Plan, next_tick, ticks_between
from .spec import (
                   DST_FOLD_CHOICES,
                   DST_GAP_CHOICES,
                   FOLD_FIRST,
                   FOLD_SECOND,
                   GAP_SHIFTED,
                   GAP_SKIPPED,
                   NOTES,
                   CronSpec,
                   IntervalSpec,
                   OnceSpec,
                   Tick,
)
from .zones import ALLOWED_TIMEZONES, validate_timezone

__all__ = [
    "ALLOWED_TIMEZONES", "DST_FOLD_CHOICES", "DST_GAP_CHOICES", "FOLD_FIRST", "FOLD_SECOND",
    "GAP_SHIFTED", "GAP_SKIPPED", "MAX_TICKS", "NOTES", "CronSpec", "IntervalSpec", "OnceSpec",
    "Plan", "Tick", "TimingError", "next_tick", "ticks_between", "validate_cron",
    "validate_timezone",
]

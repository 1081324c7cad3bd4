"""Command arguments read strictly: every bad value is a one-line CommandError naming it.

Values are checked here rather than by argparse ``type=`` because
``call_command`` passes keyword options through unparsed (``count=5`` arrives
as an int, ``count="5"`` as a str), and because ``int()`` and ``float()``
read any Unicode digit: ``int("١")`` is 1. Numbers are ASCII digits only.
(Django skips modules whose name starts with an underscore: this is no command.)
"""
from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from django.core.management.base import CommandError

from schedules.models import Schedule
from schedules.selectors import ScheduleRefError, schedule_lookup, shown

_WHOLE = re.compile(r"[0-9]{1,30}", re.ASCII)
_DECIMAL = re.compile(r"[0-9]{1,30}(\.[0-9]{1,30})?", re.ASCII)


def one_line(message: str) -> CommandError:
    """A CommandError whose message stays on one line whatever user input it quotes."""
    return CommandError(shown(message, limit=500))


def whole_number(option: str, value: object, *, low: int, high: int) -> int:
    """An int from ``low`` to ``high``, given as an int or as ASCII digits."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _WHOLE.fullmatch(value):
        number = int(value)
    if number is None or not low <= number <= high:
        raise CommandError(f"{option} must be a whole number from {low} to {high}, got '{shown(value)}'")
    return number


def seconds(option: str, value: object, *, high: float) -> float:
    """A finite number of seconds above 0 and at most ``high``, given as a number or ASCII digits."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value) if abs(value) < 1e300 else math.inf  # float(10**400) would overflow
    elif isinstance(value, str) and _DECIMAL.fullmatch(value):
        number = float(value)
    if number is None or not math.isfinite(number) or not 0 < number <= high:
        raise CommandError(f"{option} must be a number of seconds above 0 and at most {high:g}, "
                           f"got '{shown(value)}'")
    return number


def instant(option: str, value: object) -> datetime:
    """An aware instant in UTC, given as ISO 8601 text with an offset or Z (or an aware datetime)."""
    moment = value if isinstance(value, datetime) else _iso(value)
    if moment is None:
        raise CommandError(f"{option}: '{shown(value)}' is not an ISO 8601 instant, e.g. 2026-03-07T00:00:00Z")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CommandError(f"{option}: '{shown(value)}' has no offset; add Z or +HH:MM")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+05:00 is before the first instant datetime can hold
        raise CommandError(f"{option}: '{shown(value)}' is outside the range of dates in UTC "
                           f"(0001-01-01 to 9999-12-31)") from None


def _iso(value: object) -> datetime | None:
    if not (isinstance(value, str) and value.isascii()):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def schedule_named(ref: str) -> Schedule:
    """The live schedule ``ref`` names (an id or AGENT/NAME), through the registry's one lookup."""
    try:
        return schedule_lookup(ref)
    except ScheduleRefError as error:
        raise one_line(str(error)) from None

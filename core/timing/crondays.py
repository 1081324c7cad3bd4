"""Day rules beyond plain values: the month-end and nth-weekday cron extensions.

==========  ===========  ==================================================
field       form         the day of each month it picks
==========  ===========  ==================================================
day-of-mon  ``L``        the last day
day-of-mon  ``L-3``      three days before the last (1 to 30 days)
day-of-mon  ``15W``      the weekday (Mon-Fri) nearest the 15th, never
                         outside the month; none in a month without a 15th
day-of-mon  ``LW``       the last weekday
day-of-week ``5L``       the last Friday (names work: ``FRIL``)
day-of-week ``1#2``      the second Monday (``MON#2``; weeks 1 to 5)
==========  ===========  ==================================================

Each rule depends only on the month's *shape*, the weekday of its 1st and its
length, so the matcher caches its days per shape exactly as it does for plain
values. Weekdays here count from Sunday = 0, as cron does.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from .errors import TimingError

LAST: Final = 0  # NthWeekday.nth for "the last one"
_SATURDAY, _SUNDAY = 6, 0
_DOM_RULE = re.compile(r"(?P<last>L)(?:-(?P<before>[0-9]+))?|(?P<day>[0-9]+)W|(?P<lw>LW)", re.IGNORECASE)
_DOW_RULE = re.compile(r"(?P<value>[0-9]+|[A-Za-z]{3})(?:(?P<last>L)|#(?P<nth>[0-9]+))", re.IGNORECASE)


@dataclass(frozen=True)
class LastDay:
    """``L`` (before=0) or ``L-n``: the month's last day, minus ``before`` days."""

    before: int = 0

    def days(self, first: int, length: int) -> tuple[int, ...]:
        day = length - self.before
        return (day,) if day >= 1 else ()


@dataclass(frozen=True)
class NearestWeekday:
    """``nW``: the weekday nearest day ``day``; ``LW`` (day=None): the last weekday.

    The nearest weekday never leaves the month (the Quartz rule): a Saturday
    1st moves forward to Monday the 3rd, a Sunday last day back to Friday.
    """

    day: int | None

    def days(self, first: int, length: int) -> tuple[int, ...]:
        day = length if self.day is None else self.day
        if day > length:
            return ()
        weekday = (first + day - 1) % 7
        if weekday == _SATURDAY:
            return (day - 1,) if day > 1 else (day + 2,)
        if weekday == _SUNDAY:
            return (day + 1,) if day < length and self.day is not None else (day - 2,)
        return (day,)


@dataclass(frozen=True)
class NthWeekday:
    """``wL`` (nth=LAST) or ``w#n``: the last, or the n-th, weekday ``weekday`` (0 = Sunday)."""

    weekday: int
    nth: int

    def days(self, first: int, length: int) -> tuple[int, ...]:
        earliest = 1 + (self.weekday - first) % 7
        if self.nth == LAST:
            return (earliest + 7 * ((length - earliest) // 7),)
        day = earliest + 7 * (self.nth - 1)
        return (day,) if day <= length else ()


DayRule = LastDay | NearestWeekday | NthWeekday


def dom_rule(item: str, expr: str) -> DayRule | None:
    """The rule a day-of-month list item spells, or None for a plain item."""
    match = _DOM_RULE.fullmatch(item)
    if match is None:
        return None
    if match["lw"]:
        return NearestWeekday(None)
    if match["day"]:
        day = int(match["day"])
        if not 1 <= day <= 31:
            raise TimingError(f"cron: day-of-month {item}: day {day} is out of range 1-31 ('{expr}')")
        return NearestWeekday(day)
    before = int(match["before"] or 0)
    if match["before"] is not None and not 1 <= before <= 30:
        raise TimingError(f"cron: day-of-month {item}: L-n takes n from 1 to 30 ('{expr}')")
    return LastDay(before)


def dow_rule(item: str, expr: str, weekday: Callable[[str], int]) -> DayRule | None:
    """The rule a day-of-week list item spells (``weekday`` reads its day), or None."""
    match = _DOW_RULE.fullmatch(item)
    if match is None:
        return None
    day = weekday(match["value"]) % 7
    if match["last"]:
        return NthWeekday(day, LAST)
    nth = int(match["nth"])
    if not 1 <= nth <= 5:
        raise TimingError(f"cron: day-of-week {item}: the week after # must be 1-5 ('{expr}')")
    return NthWeekday(day, nth)

"""Five-field cron expressions: parsing, validation and matching on wall time.

Semantics follow Vixie cron: names (``JAN``, ``MON-FRI``), ranges, lists and
steps; ``7`` is Sunday; a bare ``N/S`` means ``N-max/S``. When both
day-of-month and day-of-week are restricted a day matches if *either* does;
as in Vixie cron, a field is "unrestricted" when its text starts with ``*``
(so ``*/2`` in day-of-month still ANDs with day-of-week).

Matching works on naive local wall times; mapping them to instants under the
zone's DST rules is ``crontimes``' job.
"""
from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from .errors import TimingError

MAX_YEAR = 9997
_MONTH_NAMES = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAY_NAMES = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
# (name, lowest, highest, names) per field, in expression order.
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTH_NAMES),
    ("day-of-week", 0, 7, _DAY_NAMES),
)
MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_LONGEST_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_ATOM = re.compile(r"[0-9]+|[A-Za-z]+")
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Cron:
    """A compiled expression: the matching values of each field."""

    expr: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    doms: frozenset[int]
    months: tuple[int, ...]
    dows: frozenset[int]  # 0 = Sunday
    dom_star: bool
    dow_star: bool
    _days: dict[tuple[int, int], tuple[int, ...]] = field(
        default_factory=dict, compare=False, repr=False)

    @property
    def every_hour(self) -> bool:
        """True when the hour field matches all 24 hours (``*``, ``*/1``, ``0-23``)."""
        return len(self.hours) == 24

    def matches(self, wall: datetime) -> bool:
        return (wall.minute in self.minutes and wall.hour in self.hours
                and wall.month in self.months and wall.day in self.days_of(wall.year, wall.month))

    def days_of(self, year: int, month: int) -> tuple[int, ...]:
        """The matching days of one month, cached by the month's shape."""
        first, length = calendar.monthrange(year, month)
        key = (first, length)
        days = self._days.get(key)
        if days is None:
            days = self._days[key] = self._match_days(first, length)
        return days

    def _match_days(self, first: int, length: int) -> tuple[int, ...]:
        # calendar counts Monday as 0; cron counts Sunday as 0.
        sunday_based = (first + 1) % 7
        def hit(day: int) -> bool:
            dom, dow = day in self.doms, (sunday_based + day - 1) % 7 in self.dows
            return dom and dow if self.dom_star or self.dow_star else dom or dow
        return tuple(day for day in range(1, length + 1) if hit(day))

    def next_at_or_after(self, wall: datetime) -> datetime | None:
        """The first matching wall time at or after ``wall`` (None past year 9997)."""
        if wall.second or wall.microsecond:
            wall = wall.replace(second=0, microsecond=0) + MINUTE
        year, month, day, hour, minute = wall.year, wall.month, wall.day, wall.hour, wall.minute
        while year <= MAX_YEAR:
            if month not in self.months:
                year, month = self._next_month(year, month)
                day, hour, minute = 1, 0, 0
                continue
            days = self.days_of(year, month)
            i = bisect_left(days, day)
            if i == len(days):
                year, month = (year, month + 1) if month < 12 else (year + 1, 1)
                day, hour, minute = 1, 0, 0
                continue
            if days[i] != day:
                day, hour, minute = days[i], 0, 0
            j = bisect_left(self.hours, hour)
            if j == len(self.hours):
                day, hour, minute = day + 1, 0, 0
                continue
            if self.hours[j] != hour:
                hour, minute = self.hours[j], 0
            k = bisect_left(self.minutes, minute)
            if k == len(self.minutes):
                hour, minute = hour + 1, 0
                continue
            return datetime(year, month, day, hour, self.minutes[k])
        return None

    def _next_month(self, year: int, month: int) -> tuple[int, int]:
        i = bisect_left(self.months, month)
        return (year, self.months[i]) if i < len(self.months) else (year + 1, self.months[0])


def validate_cron(expr: str) -> None:
    """Raise TimingError with a one-line message unless ``expr`` is a valid, firing expression."""
    compile_cron(expr)


def compile_cron(expr: str) -> Cron:
    if not isinstance(expr, str):
        raise TimingError(f"cron: expression must be a string, not {type(expr).__name__}")
    return _compile(expr)


@lru_cache(maxsize=4096)
def _compile(expr: str) -> Cron:
    # Messages quote the expression on one line, whatever whitespace it came with.
    shown = " ".join(expr.split())
    fields = _split(shown)
    minutes, hours, doms, months, dows = (_parse_field(text, i, shown) for i, text in enumerate(fields))
    cron = Cron(expr, tuple(sorted(minutes)), tuple(sorted(hours)), frozenset(doms),
                tuple(sorted(months)), frozenset(d % 7 for d in dows),
                fields[2].startswith("*"), fields[4].startswith("*"))
    _check_fires(cron, fields, shown)
    return cron


def _split(expr: str) -> list[str]:
    text = expr.strip()
    if not text:
        raise TimingError("cron: empty expression")
    if text.startswith("@"):
        macro = MACROS.get(text.lower())
        if macro is None:
            raise TimingError(f"cron: unknown macro '{text}' (use one of {', '.join(MACROS)})")
        return macro.split()
    fields = text.split()
    if len(fields) != 5:
        extra = "; seconds and year fields are not supported" if len(fields) > 5 else ""
        raise TimingError(f"cron: expected 5 fields (minute hour day-of-month month day-of-week), "
                          f"got {len(fields)}{extra} ('{expr}')")
    return fields


def _parse_field(text: str, index: int, expr: str) -> set[int]:
    name = _FIELDS[index][0]
    unsupported = _unsupported(text)
    if unsupported:
        raise TimingError(f"cron: '{unsupported}' in the {name} field is not supported; "
                          f"standard five-field cron only ('{expr}')")
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise TimingError(f"cron: empty list item in the {name} field ('{expr}')")
        values |= _parse_item(item, index, expr)
    return values


def _unsupported(text: str) -> str | None:
    """Quartz-style extensions (``L``, ``15W``, ``5#2``, ``?``), named so the message can say so."""
    for char in "#?":
        if char in text:
            return char
    words: list[str] = re.findall(r"[A-Za-z]+", text)
    return next((word for word in words if word.upper() in ("L", "W", "LW")), None)


def _parse_item(item: str, index: int, expr: str) -> set[int]:
    name, low, high, _ = _FIELDS[index]
    base, slash, step_text = item.partition("/")
    step = _step(step_text, name, expr) if slash else 1
    if base == "*":
        start, stop = low, high
    elif "-" in base:
        first, _, last = base.partition("-")
        if not first or not last:
            raise TimingError(f"cron: {name} range '{base}' is missing a bound ('{expr}')")
        start, stop = _value(first, index, expr), _value(last, index, expr)
        if start > stop:
            raise TimingError(f"cron: {name} range {base} is reversed ('{expr}')")
    else:
        start = _value(base, index, expr)
        stop = high if slash else start
    return set(range(start, stop + 1, step))


def _step(text: str, name: str, expr: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise TimingError(f"cron: {name} step '{text}' is not a positive number ('{expr}')")
    if int(text) == 0:
        raise TimingError(f"cron: {name} step must be at least 1 ('{expr}')")
    return int(text)


def _value(token: str, index: int, expr: str) -> int:
    name, low, high, names = _FIELDS[index]
    if _ATOM.fullmatch(token) is None:
        raise TimingError(f"cron: '{token}' in the {name} field is not a number"
                          f"{' or name' if names else ''} ('{expr}')")
    if token.isdigit():
        number = int(token)
        if not low <= number <= high:
            raise TimingError(f"cron: {name} {number} is out of range {low}-{high} ('{expr}')")
        return number
    if token.upper() not in names:
        kind = f"a {name} name" if names else "a number"
        raise TimingError(f"cron: '{token}' in the {name} field is not {kind} ('{expr}')")
    return names[token.upper()]


def _check_fires(cron: Cron, fields: list[str], expr: str) -> None:
    # Only a day-of-month that ANDs with day-of-week can rule out every day:
    # with the OR rule any weekday fires, and "*"-style fields include day 1.
    if cron.dom_star or not cron.dow_star:
        return
    if any(day <= _LONGEST_MONTH[month] for month in cron.months for day in cron.doms):
        return
    months = [calendar.month_name[m] for m in cron.months]
    where = months[0] if len(months) == 1 else ", ".join(months[:-1]) + " or " + months[-1]
    raise TimingError(f"cron: day-of-month {fields[2]} never occurs in {where} ('{expr}')")

"""Five-field cron expressions: parsing, validation and matching on wall time.

Semantics follow Vixie cron: names (``JAN``, ``MON-FRI``), ranges, lists and
steps; ``7`` is Sunday; a bare ``N/S`` means ``N-max/S``. When both
day-of-month and day-of-week are restricted a day matches if *either* does;
as in Vixie cron, a field is "unrestricted" when its text starts with ``*``
(so ``*/2`` in day-of-month still ANDs with day-of-week).

The common extensions are supported with one meaning each (``crondays``):
``L``, ``L-n``, ``nW``, ``LW`` in day-of-month, ``nL`` and ``n#k`` in
day-of-week, and ``?`` as ``*`` in either day field. As in Quartz, a day
field using an extension needs the other day field unrestricted (``*`` or
``?``): with the OR rule ``0 0 L * MON`` would fire on every Monday too, which
is never what "the last day" means. Everything else non-standard is refused
with a message naming it.

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

from .crondays import DayRule, dom_rule, dow_rule
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
# Every length a month can have; with every weekday for its 1st, these are all
# the month shapes the years 2-9997 contain.
_LENGTHS = ((), (31,), (28, 29), (31,), (30,), (31,), (30,), (31,), (31,), (30,), (31,), (30,), (31,))
_ATOM = re.compile(r"[0-9]+|[A-Za-z]+")
_TZ_PREFIX = re.compile(r"(?:CRON_)?TZ=(\S*)", re.IGNORECASE)
_JENKINS_HASH = re.compile(r"H(?:\(.*\))?(?:/.*)?", re.IGNORECASE)
_DOM, _DOW = 2, 4
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
    dom_rules: tuple[DayRule, ...] = ()
    dow_rules: tuple[DayRule, ...] = ()
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
        """The matching days of one month."""
        first, length = calendar.monthrange(year, month)
        return self.days_of_shape((first + 1) % 7, length)  # calendar counts Monday as 0

    def days_of_shape(self, first: int, length: int) -> tuple[int, ...]:
        """The matching days of a month whose 1st is weekday ``first`` (0 = Sunday), cached."""
        key = (first, length)
        days = self._days.get(key)
        if days is None:
            by_dom, by_dow = self.dom_days(first, length), self.dow_days(first, length)
            both = self.dom_star or self.dow_star
            days = self._days[key] = tuple(sorted(by_dom & by_dow if both else by_dom | by_dow))
        return days

    def dom_days(self, first: int, length: int) -> set[int]:
        """The days the day-of-month field alone picks in a month of this shape."""
        days = {day for day in self.doms if day <= length}
        return days.union(*(rule.days(first, length) for rule in self.dom_rules))

    def dow_days(self, first: int, length: int) -> set[int]:
        """The days the day-of-week field alone picks in a month of this shape."""
        days = {day for day in range(1, length + 1) if (first + day - 1) % 7 in self.dows}
        return days.union(*(rule.days(first, length) for rule in self.dow_rules))

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
    parsed = [_parse_field(text, i, shown) for i, text in enumerate(fields)]
    (minutes, _), (hours, _), (doms, dom_rules), (months, _), (dows, dow_rules) = parsed
    _check_day_fields(fields, bool(dom_rules), bool(dow_rules), shown)
    cron = Cron(expr, tuple(sorted(minutes)), tuple(sorted(hours)), frozenset(doms),
                tuple(sorted(months)), frozenset(d % 7 for d in dows),
                _unrestricted(fields[_DOM]), _unrestricted(fields[_DOW]), dom_rules, dow_rules)
    _check_fires(cron, fields, shown)
    return cron


def _unrestricted(text: str) -> bool:
    # Vixie cron's test is the leading "*"; "?" is Quartz's spelling of "*".
    return text.startswith("*") or text == "?"


def _split(expr: str) -> list[str]:
    text = expr.strip()
    if not text:
        raise TimingError("cron: empty expression")
    if text.startswith("@"):
        macro = MACROS.get(text.lower())
        if macro is None:
            raise TimingError(f"cron: unknown macro '{text}' (use one of {', '.join(MACROS)})")
        return macro.split()
    prefix = _TZ_PREFIX.match(text)
    if prefix:
        zone = f" to '{prefix[1]}'" if prefix[1] else ""
        raise TimingError(f"cron: a '{prefix[0].partition('=')[0]}=' prefix is not supported; "
                          f"set the schedule's timezone{zone} instead ('{expr}')")
    fields = text.split()
    if len(fields) != 5:
        extra = "; seconds and year fields are not supported" if len(fields) > 5 else ""
        raise TimingError(f"cron: expected 5 fields (minute hour day-of-month month day-of-week), "
                          f"got {len(fields)}{extra} ('{expr}')")
    return fields


def _parse_field(text: str, index: int, expr: str) -> tuple[set[int], tuple[DayRule, ...]]:
    """The field's plain values, and its day rules (only the two day fields have any)."""
    name = _FIELDS[index][0]
    if text == "?" and index in (_DOM, _DOW):
        return _parse_item("*", index, expr), ()
    values: set[int] = set()
    rules: list[DayRule] = []
    for item in text.split(","):
        if not item:
            raise TimingError(f"cron: empty list item in the {name} field ('{expr}')")
        rule = _day_rule(item, index, expr)
        if rule is not None:
            rules.append(rule)
            continue
        hint = _non_standard(item, index)
        if hint:
            raise TimingError(f"cron: '{item}' in the {name} field is not supported; {hint} ('{expr}')")
        values |= _parse_item(item, index, expr)
    return values, tuple(rules)


def _day_rule(item: str, index: int, expr: str) -> DayRule | None:
    if index == _DOM:
        return dom_rule(item, expr)
    if index == _DOW:
        return dow_rule(item, expr, lambda token: _value(token, _DOW, expr))
    return None


def _non_standard(item: str, index: int) -> str | None:
    """What to say about an extension no rule took (``H``, ``?``, ``#``, ``L``, ``W``), or None."""
    if _JENKINS_HASH.fullmatch(item):
        return "H is Jenkins' hashed value, not cron: write a fixed value, and spread load with the schedule's jitter"
    if "?" in item:
        return ("? (meaning *) must be the whole field" if index in (_DOM, _DOW)
                else "only day-of-month and day-of-week take ? (meaning *)")
    words = {word.upper() for word in re.findall(r"[A-Za-z]+", item)}
    if "#" in item:
        return ("# takes one day and a week number, as in 1#2 (the second Monday)" if index == _DOW
                else "# is for day-of-week, as in 1#2 (the second Monday)")
    if not words & {"L", "W", "LW"}:
        return None
    if index == _DOM:
        return "L, L-n (n 1-30), nW and LW each stand alone as a list item"
    if index == _DOW and item.upper() == "L":
        return "alone it is ambiguous (Quartz reads it as Saturday): write SAT, or 5L for the last Friday"
    if index == _DOW and "L" in words:
        return "the last Friday is written 5L (or FRIL), one day per list item"
    if index == _DOW:
        return "W (nearest weekday) is for day-of-month, as in 15W"
    return "L is for day-of-month (L, L-n, LW) and day-of-week (5L), W for day-of-month (15W)"


def _check_day_fields(fields: list[str], dom_rules: bool, dow_rules: bool, expr: str) -> None:
    # Quartz's rule. With both day fields set a day matches if either does, so
    # "0 0 L * MON" would be every Monday as well as the last day: never meant.
    if (dom_rules and fields[_DOW] not in ("*", "?")) or (dow_rules and fields[_DOM] not in ("*", "?")):
        raise TimingError(f"cron: day-of-month {fields[_DOM]} with day-of-week {fields[_DOW]}: with both "
                          f"day fields set a day matches if either does, so L, W and # need the other day "
                          f"field to be * or ? ('{expr}')")


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
    """Refuse an expression no month shape of its months has a day for: it would never fire."""
    shapes = [(first, length) for month in cron.months for length in _LENGTHS[month] for first in range(7)]
    if any(cron.days_of_shape(first, length) for first, length in shapes):
        return
    if not any(cron.dom_days(first, length) for first, length in shapes):
        what = f"day-of-month {fields[_DOM]} never occurs"
    elif not any(cron.dow_days(first, length) for first, length in shapes):
        what = f"day-of-week {fields[_DOW]} never occurs"
    else:
        what = f"day-of-month {fields[_DOM]} and day-of-week {fields[_DOW]} never fall on the same day"
    months = [calendar.month_name[m] for m in cron.months]
    where = months[0] if len(months) == 1 else ", ".join(months[:-1]) + " or " + months[-1]
    raise TimingError(f"cron: {what} in {where} ('{expr}')")

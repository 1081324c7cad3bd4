"""The engine against a brute-force reference, with zero disagreements as the bar.

The reference shares nothing with the engine but the pinned zone data: it walks
UTC minute by minute, converts each minute to wall time with ``zoneinfo``,
matches the fields with its own simple matcher (on value sets and day rules the
expression generator built, not parsed), applies the fold rule, and derives gap
ticks from the wall-clock jumps it sees. Windows sit around real transitions of
random zones in random years.

The day rules (``L``, ``L-n``, ``nW``, ``LW``, ``nL``, ``n#k``) are decided
here by date arithmetic on the day itself (is tomorrow in another month? which
Monday-to-Friday day of this month is closest?), not from the month's shape as
the engine does. A second property checks them over years of days in UTC.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from core.timing import (
    ALLOWED_TIMEZONES,
    MAX_TICKS,
    CronSpec,
    Plan,
    TimingError,
    next_tick,
    ticks_between,
    validate_timezone,
)

UTC = UTC
MINUTE = timedelta(minutes=1)
ZONES = sorted(ALLOWED_TIMEZONES)
# Zones whose transitions are unusual: half-hour shifts, odd offsets, Ramadan
# flips, negative DST, whole-day gaps, two-hour DST, rule changes.
FOCUS_ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/St_Johns",
               "Pacific/Chatham", "Africa/Casablanca", "America/Mexico_City", "Asia/Tehran",
               "Pacific/Apia", "Pacific/Kwajalein", "Europe/Dublin", "Antarctica/Troll",
               "America/Nuuk", "Asia/Gaza", "America/Santiago", "Europe/Moscow"]
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
ONE_DAY = timedelta(days=1)
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# --- the reference -----------------------------------------------------------------

# A day rule, as the generator drew it: ("last", n) is L-n (L for n = 0);
# ("weekday", n) is nW, ("weekday", None) LW; ("nth", w, k) is w#k, with k = 0 for wL.
Rule = tuple[str, int | None] | tuple[str, int, int]


@dataclass(frozen=True)
class DayField:
    text: str
    values: frozenset[int]
    rules: tuple[Rule, ...] = ()

    @property
    def star(self) -> bool:
        return self.text.startswith("*") or self.text == "?"


@dataclass(frozen=True)
class Fields:
    text: str
    minute: frozenset[int]
    hour: frozenset[int]
    dom: DayField
    month: frozenset[int]
    dow: DayField  # values 0-6, Sunday 0

    def matches(self, wall: datetime) -> bool:
        return wall.minute in self.minute and wall.hour in self.hour and day_matches(self, wall.date())

    def never_fires(self) -> bool:
        # Every month shape of the Gregorian calendar occurs in 28 years without
        # a skipped leap year.
        day, end = date(2000, 1, 1), date(2028, 1, 1)
        while day < end:
            if day_matches(self, day):
                return False
            day += ONE_DAY
        return True


@cache
def day_matches(fields: Fields, day: date) -> bool:
    if day.month not in fields.month:
        return False
    dom = day.day in fields.dom.values or any(rule_hits(rule, day) for rule in fields.dom.rules)
    dow = day.isoweekday() % 7 in fields.dow.values or any(rule_hits(rule, day) for rule in fields.dow.rules)
    return dom and dow if fields.dom.star or fields.dow.star else dom or dow


def rule_hits(rule: Rule, day: date) -> bool:
    if rule[0] == "last":
        return (day + (rule[1] or 0) * ONE_DAY).month == day.month != (day + ((rule[1] or 0) + 1) * ONE_DAY).month
    if rule[0] == "weekday":
        return day == nearest_weekday(day, rule[1])
    _, weekday, nth = rule
    if day.isoweekday() % 7 != weekday:
        return False
    return (day + 7 * ONE_DAY).month != day.month if nth == 0 else (day.day + 6) // 7 == nth


def nearest_weekday(day: date, target: int | None) -> date | None:
    """The Monday-to-Friday day of ``day``'s month closest to day ``target`` (None: the last day)."""
    month = [d for i in range(31) if (d := day.replace(day=1) + i * ONE_DAY).month == day.month]
    if target is None:
        target = len(month)
    if target > len(month):
        return None
    weekdays = [d for d in month if d.isoweekday() <= 5]
    return min(weekdays, key=lambda d: abs(d.day - target))


def reference(fields: Fields, zone_name: str, gap: str, fold: str,
              lo: datetime, hi: datetime) -> list[tuple[datetime, str | None, datetime]]:
    """Every tick with lo < at <= hi as (at, note, naive wall time), by walking minutes."""
    zone = validate_timezone(zone_name)
    real: dict[datetime, tuple[str | None, datetime]] = {}
    gaps: list[tuple[datetime, timedelta, datetime]] = []
    u = lo - timedelta(hours=25)  # gaps last at most a day: their ticks land within it
    previous = None
    while u <= hi:
        local = u.astimezone(zone)
        wall = local.replace(tzinfo=None)
        if previous is not None and wall - previous[0] > MINUTE:
            gaps += [(g, previous[1], u) for g in _minutes(previous[0] + MINUTE, wall) if fields.matches(g)]
        if fields.matches(wall):
            note = _fold_note(fields, fold, local)
            if note != "drop":
                real[u] = (note, wall)
        previous = (wall, _offset(local))
        u += MINUTE
    ticks = dict(real)
    for g, before, transition in gaps:
        if gap == "skip" and (at := g.replace(tzinfo=UTC) - before) not in real:
            ticks[at] = ("dst_gap_skipped", g)
        elif gap == "shift" and transition not in real:
            ticks[transition] = ("dst_gap_shifted", transition.astimezone(zone).replace(tzinfo=None))
    return sorted((at, note, wall) for at, (note, wall) in ticks.items() if lo < at <= hi)


def _offset(local: datetime) -> timedelta:
    offset = local.utcoffset()
    assert offset is not None
    return offset


def _minutes(start: datetime, stop: datetime) -> list[datetime]:
    return [start + i * MINUTE for i in range((stop - start) // MINUTE)]


def _fold_note(fields: Fields, fold: str, local: datetime) -> str | None:
    other = local.replace(fold=1 - local.fold)
    if other.utcoffset() == local.utcoffset():
        return None
    second = local.fold == 1
    if len(fields.hour) == 24 or fold == "both" or fold == ("last" if second else "first"):
        return "dst_fold_second" if second else "dst_fold_first"
    return "drop"


@cache
def transitions(zone_name: str, year: int) -> tuple[datetime, ...]:
    """Offset changes in a year: a daily probe, then bisection to the minute."""
    zone = validate_timezone(zone_name)
    day, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    found = []
    while day < end:
        if day.astimezone(zone).utcoffset() != (day + timedelta(days=1)).astimezone(zone).utcoffset():
            lo, hi = 0, 1440  # minutes into the day: the change is in (lo, hi]
            while hi - lo > 1:
                mid = (lo + hi) // 2
                same = (day + mid * MINUTE).astimezone(zone).utcoffset() == day.astimezone(zone).utcoffset()
                lo, hi = (mid, hi) if same else (lo, mid)
            found.append(day + hi * MINUTE)
        day += timedelta(days=1)
    return tuple(found)


# --- generators --------------------------------------------------------------------

@st.composite
def field(draw: st.DrawFn, low: int, high: int, focus: list[int],
          names: list[str] | None = None) -> tuple[str, set[int]]:
    form = draw(st.sampled_from(["*", "*", "*/s", "v", "v", "a-b", "a-b/s", "v/s", "list"]))
    if form == "*":
        return "*", set(range(low, high + 1))
    if form == "*/s":
        step = draw(st.integers(1, high - low + 1))
        return f"*/{step}", set(range(low, high + 1, step))
    if form == "list":
        items = [draw(_item(low, high, focus, names, "list")) for _ in range(draw(st.integers(2, 3)))]
        return ",".join(t for t, _ in items), set().union(*(s for _, s in items))
    return draw(_item(low, high, focus, names, form))


@st.composite
def _item(draw: st.DrawFn, low: int, high: int, focus: list[int], names: list[str] | None,
          form: str) -> tuple[str, set[int]]:
    if form == "list":
        form = draw(st.sampled_from(["v", "a-b", "a-b/s", "v/s"]))
    near = focus and draw(st.integers(0, 5))
    a = draw(st.sampled_from(focus) if near else st.integers(low, high))
    if form == "v":
        return _name(draw, a, low, names), {a}
    if form == "v/s":
        step = draw(st.integers(1, high - low + 1))
        return f"{a}/{step}", set(range(a, high + 1, step))
    b = draw(st.integers(a, min(high, a + draw(st.sampled_from([1, 2, 3, 6, high])))))
    text = f"{_name(draw, a, low, names)}-{_name(draw, b, low, names)}"
    if form == "a-b/s":
        step = draw(st.integers(1, 4))
        return f"{text}/{step}", set(range(a, b + 1, step))
    return text, set(range(a, b + 1))


def _name(draw: st.DrawFn, value: int, low: int, names: list[str] | None) -> str:
    if names and value - low < len(names) and draw(st.booleans()):
        return draw(st.sampled_from([names[value - low], names[value - low].lower()]))
    return str(value)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, datetime, datetime, datetime]:
    """A zone, a window (lo, hi] and the instant it is built around (mostly a transition)."""
    zone = draw(st.one_of(st.sampled_from(FOCUS_ZONES), st.sampled_from(ZONES)))
    years = draw(st.lists(st.integers(1976, 2045), min_size=3, max_size=3))
    changes = next((found for year in years if (found := transitions(zone, year))), ())
    if not changes and draw(st.integers(0, 3)):  # most zones have no DST: use one that does
        zone = draw(st.sampled_from(FOCUS_ZONES))
        changes = next((found for year in years if (found := transitions(zone, year))), ())
    if changes and draw(st.integers(0, 9)) != 5:
        anchor = draw(st.sampled_from(changes))
    else:
        anchor = datetime(years[0], 1, 1, tzinfo=UTC) + draw(st.integers(0, 364 * 1440)) * MINUTE
    lo = anchor - draw(st.one_of(st.integers(1, 3 * 60), st.integers(1, 26 * 60))) * MINUTE
    hi = anchor + draw(st.one_of(st.integers(0, 3 * 60), st.integers(0, 26 * 60))) * MINUTE
    return zone, lo, hi, anchor


@st.composite
def _mostly_star(draw: st.DrawFn, low: int, high: int,
                 other: st.SearchStrategy[tuple[str, set[int]]]) -> tuple[str, set[int]]:
    # Restricted day fields rarely match a two-day window: keep them mostly open.
    return ("*", set(range(low, high + 1))) if draw(st.integers(0, 3)) else draw(other)


@st.composite
def expressions(draw: st.DrawFn, zone: str, anchor: datetime) -> Fields:
    """Random fields, biased towards the wall times on either side of ``anchor``."""
    tz = validate_timezone(zone)
    walls = [(anchor + d * MINUTE).astimezone(tz) for d in (-1, 0)]
    walls.append(walls[0] + (_offset(walls[1]) - _offset(walls[0])))
    hours = sorted({(w.hour + d) % 24 for w in walls for d in (-1, 0, 1)})
    minutes = sorted({0, 15, 30, 45, 59} | {w.minute for w in walls})
    minute = draw(field(0, 59, minutes))
    hour = draw(field(0, 23, hours))
    dom, dow = draw(day_fields(sorted({w.date() + d * ONE_DAY for w in walls for d in (-1, 0, 1)})))
    month = draw(_mostly_star(1, 12, field(1, 12, [walls[0].month], MONTHS)))
    text = " ".join((minute[0], hour[0], dom.text, month[0], dow.text))
    return Fields(text, frozenset(minute[1]), frozenset(hour[1]), dom, frozenset(month[1]), dow)


@st.composite
def day_fields(draw: st.DrawFn, dates: list[date], plain: int = 3) -> tuple[DayField, DayField]:
    """Day-of-month and day-of-week; at most one uses the extensions, the other is then * or ?.

    ``plain`` to 2 is the odds against an extension.
    """
    kind = draw(st.sampled_from(["plain"] * plain + ["dom", "dow"]))
    star = draw(st.sampled_from(["*", "?"]))
    dom_days, weekdays = [d.day for d in dates], [d.isoweekday() % 7 for d in dates]
    if kind == "dom":
        dom = draw(_extended(dates, _dom_rule, field(1, 31, dom_days), weekday=False))
        return dom, DayField(star, frozenset(range(7)))
    if kind == "dow":
        dow = draw(_extended(dates, _dow_rule, field(0, 7, weekdays, DAYS), weekday=True))
        return DayField(star, frozenset(range(1, 32))), dow
    dom = draw(_mostly_star(1, 31, field(1, 31, dom_days)))
    dow = draw(_mostly_star(0, 7, field(0, 7, weekdays[:1], DAYS)))
    return _plain(draw, *dom), _plain(draw, *dow, weekday=True)


def _plain(draw: st.DrawFn, text: str, values: set[int], *, weekday: bool = False) -> DayField:
    if text == "*" and not draw(st.integers(0, 4)):
        text = "?"
    return DayField(text, frozenset(_seven_is_sunday(values) if weekday else values))


def _seven_is_sunday(values: set[int]) -> set[int]:
    return {v % 7 for v in values}


RuleStrategy = Callable[[list[date]], st.SearchStrategy[tuple[str, Rule]]]


@st.composite
def _extended(draw: st.DrawFn, dates: list[date], rule: RuleStrategy,
              plain: st.SearchStrategy[tuple[str, set[int]]], *, weekday: bool) -> DayField:
    """A list of one to three items, at least one of them a day rule."""
    items: list[str] = []
    values: set[int] = set()
    rules: list[Rule] = []
    for i in range(draw(st.integers(1, 3))):
        if i == 0 or draw(st.booleans()):
            text, drawn = draw(rule(dates))
            items.append(text)
            rules.append(drawn)
            continue
        text, more = draw(plain)
        if not text.startswith("*"):  # a leading "*" would make the field unrestricted
            items.append(text)
            values |= _seven_is_sunday(more) if weekday else more
    return DayField(",".join(items), frozenset(values), tuple(rules))


@st.composite
def _dom_rule(draw: st.DrawFn, dates: list[date]) -> tuple[str, Rule]:
    day = draw(st.sampled_from(dates))
    length = max(d.day for i in range(31) if (d := day.replace(day=1) + i * ONE_DAY).month == day.month)
    form = draw(st.sampled_from(["L", "L-n", "nW", "LW"]))
    case = str.lower if draw(st.integers(0, 3)) == 0 else str.upper
    if form == "L-n":
        before = draw(st.one_of(st.just(length - day.day), st.integers(1, 30)))
        return (case(f"L-{before}") if before else case("L")), ("last", before)
    if form == "nW":
        target = draw(st.one_of(st.integers(max(1, day.day - 2), min(31, day.day + 2)), st.integers(1, 31)))
        return case(f"{target}W"), ("weekday", target)
    return (case("LW"), ("weekday", None)) if form == "LW" else (case("L"), ("last", 0))


@st.composite
def _dow_rule(draw: st.DrawFn, dates: list[date]) -> tuple[str, Rule]:
    day = draw(st.sampled_from(dates))
    weekday = draw(st.one_of(st.just(day.isoweekday() % 7), st.integers(0, 6)))
    spelled = draw(st.sampled_from([str(weekday), DAYS[weekday], DAYS[weekday].lower()]
                                   + (["7"] if weekday == 0 else [])))
    if draw(st.booleans()):
        return f"{spelled}{draw(st.sampled_from(['L', 'l']))}", ("nth", weekday, 0)
    nth = draw(st.one_of(st.just(min(5, (day.day + 6) // 7)), st.integers(1, 5)))
    return f"{spelled}#{nth}", ("nth", weekday, nth)


@st.composite
def day_windows(draw: st.DrawFn) -> tuple[Fields, datetime, datetime]:
    """Day fields alone (fire at 00:00 UTC) and a window of a few years."""
    start = datetime(draw(st.integers(1990, 2090)), draw(st.integers(1, 12)), 1, tzinfo=UTC)
    start += draw(st.integers(0, 30)) * ONE_DAY
    dates = sorted({(start + draw(st.integers(0, 2 * 366)) * ONE_DAY).date() for _ in range(3)})
    dom, dow = draw(day_fields(dates, plain=1))
    month = draw(_mostly_star(1, 12, field(1, 12, [d.month for d in dates], MONTHS)))
    text = f"0 0 {dom.text} {month[0]} {dow.text}"
    fields = Fields(text, frozenset({0}), frozenset({0}), dom, frozenset(month[1]), dow)
    return fields, start, start + draw(st.integers(30, 2 * 366)) * ONE_DAY


# --- the property ------------------------------------------------------------------

@SETTINGS
@given(data=st.data(), gap=st.sampled_from(["skip", "shift"]),
       fold=st.sampled_from(["first", "last", "both"]))
def test_engine_agrees_with_the_brute_force_reference(data: st.DataObject, gap: str, fold: str) -> None:
    zone, lo, hi, anchor = data.draw(scenarios(), label="window")
    fields = data.draw(expressions(zone, anchor), label="fields")
    try:
        plan = Plan(CronSpec(fields.text, zone, gap, fold))
    except TimingError as error:
        assert fields.never_fires(), str(error)
        assume(False)
    assert not fields.never_fires()
    ticks = ticks_between(plan, after=lo, until=hi, limit=MAX_TICKS)
    engine = [(t.at, t.note, t.local.replace(tzinfo=None)) for t in ticks]
    assert engine == reference(fields, zone, gap, fold, lo, hi)
    event(f"notes: {' '.join(sorted({str(t.note) for t in ticks})) or 'no ticks'}")
    # (== across zones is always False for a wall time in a fold, PEP 495: compare in UTC)
    assert all(t.local.astimezone(UTC) == t.at and t.at.tzinfo is UTC for t in ticks)
    probe = data.draw(st.integers(0, (hi - lo) // MINUTE), label="probe") * MINUTE + lo
    following = [t for t in ticks if t.at > probe]
    nxt = next_tick(plan, after=probe)
    assert (nxt == following[0]) if following else (nxt is None or nxt.at > hi)


@settings(SETTINGS, max_examples=100)
@given(data=st.data())
def test_day_rules_agree_with_the_reference_over_years(data: st.DataObject) -> None:
    fields, lo, hi = data.draw(day_windows(), label="fields and window")
    try:
        plan = Plan(CronSpec(fields.text))
    except TimingError as error:
        assert fields.never_fires(), str(error)
        assume(False)
    ticks = ticks_between(plan, after=lo, until=hi, limit=MAX_TICKS)
    days = [lo.date() + i * ONE_DAY for i in range(1, (hi - lo) // ONE_DAY + 1)]  # lo, hi: midnights
    assert [t.at.date() for t in ticks] == [d for d in days if day_matches(fields, d)]
    assert all(t.at.time() == datetime.min.time() for t in ticks)
    event(f"rules: {' '.join(sorted({r[0] for r in fields.dom.rules + fields.dow.rules})) or 'none'}")

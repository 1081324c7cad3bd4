"""croniter as an independent oracle: random expressions, zones and instants away from DST changes.

croniter is a separate implementation of cron matching with its own timezone
handling. Away from DST changes the two contracts are the same, so the engine's
next ticks must be croniter's. Near a change they differ on purpose
(docs/time.md, "croniter"): croniter runs a gap's missing wall time at the end
of the gap and can run both passes of a fold, where the engine follows
``dst_gap`` and ``dst_fold``. So a start instant within a day of an offset
change of its zone is filtered out, and a run of ticks is compared only up to
its first tick within a day of one.

croniter runs with ``implement_cron_bug=True``: that is Vixie cron's
day-field rule the engine follows (a day field starting with ``*`` does not
trigger the either-field OR).

Left out of the expressions, because croniter means something else or cannot
say it:

* single-value ranges (``9-9``): croniter 7 reads them as the whole field;
* ``v/s`` in day-of-week: Vixie cron's day-of-week runs to 7, so ``1/6`` is
  Monday and Sunday; croniter's stops at 6 (Mondays only);
* ``L-n``, ``LW``, ``nW`` in a list, and plain days mixed with ``n#k`` in
  day-of-week: croniter refuses them;
* ``nW`` for n above 28: croniter moves ``31W`` in a 30-day month to that
  month's last weekday; here a month without day n has no ``nW`` day, like
  plain ``n``.

``5L`` (the last Friday) is croniter's ``L5``: the same meaning, so croniter
gets its own spelling.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from random import Random
from zoneinfo import ZoneInfo

from croniter import croniter
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from core.timing import ALLOWED_TIMEZONES, CronSpec, Plan, TimingError, ticks_between, validate_timezone

UTC = UTC
HOUR = timedelta(hours=1)
ZONES = sorted(ALLOWED_TIMEZONES)
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
FIRST, LAST = datetime(1975, 1, 1, tzinfo=UTC), datetime(2060, 1, 1, tzinfo=UTC)
TICKS = 5
HORIZON = timedelta(days=8 * 366)  # rare expressions (a fifth Monday in February) may have fewer ticks


# --- the filter --------------------------------------------------------------------

def near_a_change(zone: ZoneInfo, at: datetime) -> bool:
    """Whether the zone's UTC offset changes within a day (and two hours) of ``at``.

    Hour by hour: offsets never change twice within an hour.
    """
    return len({(at + k * HOUR).astimezone(zone).utcoffset() for k in range(-26, 27)}) > 1


# --- generators: (the engine's text, croniter's text) ------------------------------
# Plain functions of one seeded Random: hypothesis draws the seed, and the
# assertion message shows the expression. Building it from individual draws
# cost more time than running both engines.

def item(r: Random, low: int, high: int, names: list[str] | None = None, steps: bool = True) -> str:
    form = r.choice(["v", "v", "a-b", "a-b/s", "v/s"] if steps else ["v", "v", "a-b", "a-b/s"])
    if form == "v":
        return spell(r, r.randint(low, high), low, names)
    a = r.randint(low, high - 1)
    if form == "v/s":
        return f"{a}/{r.randint(1, high - low + 1)}"
    text = f"{spell(r, a, low, names)}-{spell(r, r.randint(a + 1, high), low, names)}"
    return f"{text}/{r.randint(1, 4)}" if form == "a-b/s" else text


def spell(r: Random, value: int, low: int, names: list[str] | None) -> str:
    if names and r.random() < 0.5:
        return r.choice([names[value - low], names[value - low].lower()])
    return str(value)


def field(r: Random, low: int, high: int, names: list[str] | None = None, steps: bool = True,
          star: bool = True) -> str:
    form = r.choice(["*", "*", "*/s", "item", "list"] if star else ["*/s", "item", "item", "list"])
    if form == "*":
        return "*"
    if form == "*/s":
        return f"*/{r.randint(1, high - low + 1)}"
    count = 1 if form == "item" else r.randint(2, 3)
    return ",".join(item(r, low, high, names, steps) for _ in range(count))


def day_of_week(r: Random) -> str:
    # Day-of-week 0-6 here; 7 (Sunday) only alone, where both read it the same.
    text = field(r, 0, 6, DAYS, steps=False, star=False)
    return "7" if text == "0" and r.random() < 0.5 else text


def day_extension(r: Random) -> tuple[str, str, str]:
    """(day-of-month, day-of-week, croniter's day-of-week), one of them an extension."""
    star = r.choice(["*", "?"])
    form = r.choice(["L", "nW", "L list", "nL", "n#k", "n#k list"])
    if form == "L":
        return r.choice(["L", "l"]), star, star
    if form == "nW":
        return f"{r.randint(1, 28)}W", star, star
    if form == "L list":
        return ",".join(["L", *(item(r, 1, 28, steps=False) for _ in range(r.randint(1, 2)))]), star, star
    weekday = r.randint(0, 6)
    spelled = r.choice([str(weekday), DAYS[weekday], DAYS[weekday].lower()])
    if form == "nL":
        return star, f"{spelled}L", f"L{weekday}"
    nths = [f"{spelled}#{r.randint(1, 5)}"]
    if form == "n#k list":
        nths.append(f"{r.choice(DAYS)}#{r.randint(1, 5)}")
    return star, ",".join(nths), ",".join(nths)


def expressions(r: Random) -> tuple[str, str]:
    # A single minute and hour half the time, so that five ticks span days or
    # months and the day rules are compared, not five minutes of one day.
    minute = str(r.randint(0, 59)) if r.random() < 0.5 else field(r, 0, 59)
    hour = str(r.randint(0, 23)) if r.random() < 0.5 else field(r, 0, 23)
    month = "*" if r.random() < 0.5 else field(r, 1, 12, MONTHS)
    days = r.choice(["either", "day-of-month", "day-of-week", "extension", "extension"])
    star = r.choice(["*", "?"])
    if days == "extension":
        dom, dow, theirs_dow = day_extension(r)
    else:  # "either": both restricted, the OR rule (or the AND, for a leading "*")
        dom = field(r, 1, 31, star=False) if days != "day-of-week" else star
        dow = theirs_dow = day_of_week(r) if days != "day-of-month" else star
    return f"{minute} {hour} {dom} {month} {dow}", f"{minute} {hour} {dom} {month} {theirs_dow}"


# --- the property ------------------------------------------------------------------

@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(seed=st.integers(0, 2**32), zone_name=st.sampled_from(ZONES),
       seconds=st.integers(0, int((LAST - FIRST).total_seconds())))
def test_next_ticks_agree_with_croniter_away_from_dst_changes(seed: int, zone_name: str, seconds: int) -> None:
    ours_text, theirs_text = expressions(Random(seed))
    zone, start = validate_timezone(zone_name), FIRST + timedelta(seconds=seconds)
    assume(not near_a_change(zone, start))
    try:
        plan = Plan(CronSpec(ours_text, zone_name))
    except TimingError:  # never fires (31 in February): croniter would search in vain
        assume(False)
    ours = [tick.at for tick in ticks_between(plan, after=start, until=start + HORIZON, limit=TICKS)]
    oracle = croniter(theirs_text, start.astimezone(zone), implement_cron_bug=True)
    theirs = [oracle.get_next(datetime).astimezone(UTC) for _ in ours]
    compared = next((i for i, (a, b) in enumerate(zip(ours, theirs))
                     if near_a_change(zone, a) or near_a_change(zone, b)), len(ours))
    assert ours[:compared] == theirs[:compared], (ours_text, theirs_text, zone_name, start)
    assert all(tick.tzinfo is UTC for tick in ours)
    event(f"ticks compared: {compared}")

"""Bad input: every malformed class gets a one-line TimingError naming what is wrong."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.timing import (
    MAX_TICKS,
    CronSpec,
    IntervalSpec,
    OnceSpec,
    Plan,
    TimingError,
    next_tick,
    ticks_between,
    validate_cron,
    validate_timezone,
)

UTC = UTC
NOW = datetime(2026, 3, 1, tzinfo=UTC)
NAIVE = datetime(2026, 3, 1)


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(TimingError) as raised:
        call(*args, **kwargs)
    message = str(raised.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("expr", "says"), [
    ("", "empty expression"),
    ("   ", "empty expression"),
    ("* * * *", "expected 5 fields"),
    ("* * * * * *", "seconds and year fields are not supported"),
    ("0 0 12 * * ? 2026", "got 7"),
    ("@reboot", "unknown macro '@reboot'"),
    ("@every 5m", "unknown macro"),
])
def test_shape(expr: str, says: str) -> None:
    assert says in error_of(validate_cron, expr)


@pytest.mark.parametrize(("expr", "says"), [
    ("60 * * * *", "minute 60 is out of range 0-59"),
    ("0 24 * * *", "hour 24 is out of range 0-23"),
    ("0 0 0 * *", "day-of-month 0 is out of range 1-31"),
    ("0 0 32 * *", "day-of-month 32 is out of range 1-31"),
    ("0 0 * 0 *", "month 0 is out of range 1-12"),
    ("0 0 * 13 *", "month 13 is out of range 1-12"),
    ("0 0 * * 8", "day-of-week 8 is out of range 0-7"),
    ("0 0-24 * * *", "hour 24 is out of range"),
    ("99999999999999999999 * * * *", "out of range"),
])
def test_out_of_range(expr: str, says: str) -> None:
    assert says in error_of(validate_cron, expr)


@pytest.mark.parametrize(("expr", "says"), [
    ("x * * * *", "'x' in the minute field is not a number"),
    ("1.5 * * * *", "'1.5' in the minute field is not a number"),
    ("\u0661 * * * *", "is not a number"),  # an Arabic-Indic digit
    ("0 MON * * *", "'MON' in the hour field is not a number"),
    ("0 0 * FOO *", "'FOO' in the month field is not a month name"),
    ("0 0 * JANUARY *", "'JANUARY' in the month field is not a month name"),
    ("0 0 * * JAN", "'JAN' in the day-of-week field is not a day-of-week name"),
    ("** * * * *", "not a number"),
])
def test_garbage_and_names(expr: str, says: str) -> None:
    assert says in error_of(validate_cron, expr)


@pytest.mark.parametrize(("expr", "says"), [
    ("30-10 * * * *", "minute range 30-10 is reversed"),
    ("0 0 * * FRI-MON", "day-of-week range FRI-MON is reversed"),
    ("-5 * * * *", "minute range '-5' is missing a bound"),
    ("5- * * * *", "minute range '5-' is missing a bound"),
    ("*/0 * * * *", "minute step must be at least 1"),
    ("*/x * * * *", "minute step 'x' is not a positive number"),
    ("*/ * * * *", "minute step '' is not a positive number"),
    ("1,,2 * * * *", "empty list item in the minute field"),
    ("1, * * * *", "empty list item"),
])
def test_ranges_steps_lists(expr: str, says: str) -> None:
    assert says in error_of(validate_cron, expr)


@pytest.mark.parametrize(("expr", "says"), [
    # Extensions in the wrong place, or spelled another tool's way.
    ("0 0 * * L", "'L' in the day-of-week field is not supported; alone it is ambiguous"),
    ("0 0 * * L5", "'L5' in the day-of-week field is not supported; the last Friday is written 5L"),
    ("0 0 * * 5W", "'5W' in the day-of-week field is not supported; W (nearest weekday) is for day-of-month"),
    ("0 0 * * 1-5#2", "'1-5#2' in the day-of-week field is not supported; # takes one day and a week number"),
    ("0 0 * * #2", "'#2' in the day-of-week field is not supported"),
    ("0 0 W15 * *", "'W15' in the day-of-month field is not supported; L, L-n (n 1-30), nW and LW each stand alone"),
    ("0 0 1-L * *", "'1-L' in the day-of-month field is not supported"),
    ("0 0 15W/2 * *", "'15W/2' in the day-of-month field is not supported"),
    ("0 0 15W-20 * *", "'15W-20' in the day-of-month field is not supported"),
    ("0 0 5#2 * *", "'5#2' in the day-of-month field is not supported; # is for day-of-week"),
    ("0 L * * *", "'L' in the hour field is not supported; L is for day-of-month"),
    ("0 0 * L *", "'L' in the month field is not supported"),
    ("W * * * *", "'W' in the minute field is not supported"),
    ("? * * * *", "'?' in the minute field is not supported; only day-of-month and day-of-week take ?"),
    ("0 0 * ? *", "'?' in the month field is not supported"),
    ("0 0 ?,1 * *", "'?' in the day-of-month field is not supported; ? (meaning *) must be the whole field"),
    # Out-of-range parts of an extension.
    ("0 0 L-0 * *", "day-of-month L-0: L-n takes n from 1 to 30"),
    ("0 0 L-31 * *", "day-of-month L-31: L-n takes n from 1 to 30"),
    ("0 0 0W * *", "day-of-month 0W: day 0 is out of range 1-31"),
    ("0 0 32W * *", "day-of-month 32W: day 32 is out of range 1-31"),
    ("0 0 * * 1#0", "day-of-week 1#0: the week after # must be 1-5"),
    ("0 0 * * 1#6", "day-of-week 1#6: the week after # must be 1-5"),
    ("0 0 * * 8L", "day-of-week 8 is out of range 0-7"),
    ("0 0 * * 8#1", "day-of-week 8 is out of range 0-7"),
    ("0 0 * * FOO#1", "'FOO' in the day-of-week field is not a day-of-week name"),
    ("0 0 * * JUL", "'JUL' in the day-of-week field is not a day-of-week name"),
])
def test_non_standard_extensions_outside_their_meaning(expr: str, says: str) -> None:
    assert says in error_of(validate_cron, expr)


@pytest.mark.parametrize("expr", [
    "0 0 L * MON", "0 0 15W * 1-5", "0 0 LW * FRI", "0 0 L-2 * */2",
    "0 0 15 * 5#3", "0 0 1,15 * 5L", "0 0 */2 * 1#1",
])
def test_an_extension_needs_the_other_day_field_unrestricted(expr: str) -> None:
    # With both day fields set, cron's OR rule would add every day the other
    # field names: "0 0 L * MON" would run on every Monday too.
    message = error_of(validate_cron, expr)
    assert "with both day fields set a day matches if either does" in message
    assert "need the other day field to be * or ?" in message


@pytest.mark.parametrize(("expr", "says"), [
    ("H * * * *", "'H' in the minute field is not supported; H is Jenkins' hashed value, not cron"),
    ("H/15 * * * *", "'H/15' in the minute field is not supported"),
    ("0 H(0-5) * * *", "'H(0-5)' in the hour field is not supported"),
    ("h 0 * * *", "'h' in the minute field is not supported"),
])
def test_jenkins_hash_is_named(expr: str, says: str) -> None:
    assert says in error_of(validate_cron, expr)
    assert "jitter" in error_of(validate_cron, expr)


@pytest.mark.parametrize(("expr", "says"), [
    ("CRON_TZ=America/New_York 0 9 * * *",
     "a 'CRON_TZ=' prefix is not supported; set the schedule's timezone to 'America/New_York' instead"),
    ("TZ=Europe/Berlin 0 9 * * *", "a 'TZ=' prefix is not supported; set the schedule's timezone to 'Europe/Berlin'"),
    ("cron_tz=UTC 0 9 * * *", "a 'cron_tz=' prefix is not supported"),
    ("CRON_TZ= 0 9 * * *", "set the schedule's timezone instead"),
])
def test_timezone_prefixes_are_named_not_miscounted(expr: str, says: str) -> None:
    message = error_of(validate_cron, expr)
    assert says in message
    assert "seconds and year" not in message


@pytest.mark.parametrize(("expr", "says"), [
    ("0 0 30 2 *", "day-of-month 30 never occurs in February ('0 0 30 2 *')"),
    ("0 0 31 4 *", "day-of-month 31 never occurs in April ('0 0 31 4 *')"),
    ("0 0 30,31 2 *", "day-of-month 30,31 never occurs in February"),
    ("0 0 31 2,4,6,9,11 *", "never occurs in February, April, June, September or November"),
    ("0 0 31 APR-JUN/2 *", "never occurs in April or June"),
    ("0 0 30W 2 *", "day-of-month 30W never occurs in February ('0 0 30W 2 *')"),
    ("0 0 31W 4,6 *", "day-of-month 31W never occurs in April or June"),
    ("0 0 L-29 2 *", "day-of-month L-29 never occurs in February"),
    ("0 0 L-30 FEB,APR *", "day-of-month L-30 never occurs in February or April"),
])
def test_never_firing_expressions_are_rejected_instead_of_searched(expr: str, says: str) -> None:
    assert says in error_of(validate_cron, expr)


@pytest.mark.parametrize("expr", [
    "0 0 29 2 *",        # leap years only
    "0 0 31 2 MON",      # both restricted: the OR rule makes every February Monday match
    "0 0 */30 2 *",      # "*/30" is days 1 and 31: the 1st exists
    "0 0 31 1-12 *",
    "0 0 L-28 2 *",      # 1 February of leap years
    "0 0 * 2 1#5",       # a fifth Monday in February: 29 February of a leap year that is a Monday
    "0 0 29W 2 *",       # leap years only, like 29
    "0 0 L-30 1 *",      # 1 January
])
def test_rare_but_possible_expressions_are_valid(expr: str) -> None:
    validate_cron(expr)


def test_the_message_quotes_the_expression() -> None:
    assert error_of(validate_cron, "0 24 * * *").endswith("('0 24 * * *')")


def test_non_string_expression() -> None:
    assert "must be a string" in error_of(validate_cron, None)
    assert "must be a string, not list" in error_of(validate_cron, ["0", "0", "*", "*", "*"])


def test_messages_stay_on_one_line_whatever_the_input() -> None:
    assert "('0 0 * * * 5')" in error_of(validate_cron, "0 0\n* * *\t5")
    assert "unknown zone 'Europe/Berlin\\n'; did you mean 'Europe/Berlin'?" in error_of(
        validate_timezone, "Europe/Berlin\n")


@pytest.mark.parametrize(("name", "says"), [
    ("Mars/Olympus_Mons", "unknown zone 'Mars/Olympus_Mons'"),
    ("localtime", "unknown zone 'localtime'"),
    ("Factory", "unknown zone 'Factory'"),
    ("posixrules", "unknown zone"),
    ("", "empty name"),
    ("europe/berlin", "did you mean 'Europe/Berlin'?"),
    ("../../etc/passwd", "unknown zone"),
    ("America/New_York ", "did you mean 'America/New_York'?"),
])
def test_unknown_zones(name: str, says: str) -> None:
    assert says in error_of(validate_timezone, name)
    assert says in error_of(CronSpec, "0 0 * * *", name)


@pytest.mark.parametrize(("name", "says"), [
    ("EST", "timezone: 'EST' is UTC-05:00 all year, never EDT; use a regional zone such as 'America/New_York'"),
    ("MST", "'MST' is UTC-07:00 all year, never MDT; use a regional zone such as 'America/Denver' "
            "(or 'America/Phoenix', which keeps MST all year)"),
    ("HST", "use a regional zone such as 'Pacific/Honolulu'"),
    ("EST5EDT", "'EST5EDT' is a legacy POSIX-style rule, not a place; use a regional zone such as 'America/New_York'"),
    ("CST6CDT", "such as 'America/Chicago'"),
    ("MST7MDT", "such as 'America/Denver'"),
    ("PST8PDT", "such as 'America/Los_Angeles'"),
    ("CET", "'CET' is an abbreviation, not a place; use a regional zone such as 'Europe/Berlin'"),
    ("Etc/GMT+5", "'Etc/GMT+5' is a fixed offset, UTC-05:00 all year (POSIX signs are inverted), with no region "
                  "and no daylight saving; use the zone of the place, e.g. 'America/New_York', or 'UTC'"),
    ("Etc/GMT-1", "UTC+01:00 all year"),
    ("Etc/GMT+12", "UTC-12:00 all year (POSIX signs are inverted), with no region and no daylight saving; "
                   "use the zone of the place, or 'UTC'"),
    ("GMT", "'GMT' is another name for UTC; use 'UTC' (or 'Europe/London' for UK time, GMT in winter and "
            "BST in summer)"),
    ("Etc/GMT", "use 'UTC' (or 'Europe/London'"),
    ("Zulu", "'Zulu' is another name for UTC; use 'UTC'"),
    ("US/Eastern", "'US/Eastern' is a deprecated alias; use 'America/New_York'"),
    ("GB", "use 'Europe/London'"),
    ("Japan", "use 'Asia/Tokyo'"),
])
def test_legacy_zone_names_are_refused_with_the_regional_zone(name: str, says: str) -> None:
    assert says in error_of(validate_timezone, name)
    assert says in error_of(CronSpec, "0 9 * * *", name)


@pytest.mark.parametrize("name", ["UTC", "Etc/UTC", "Europe/Oslo", "Asia/Calcutta", "America/Indianapolis"])
def test_utc_and_regional_aliases_stay_valid(name: str) -> None:
    # Same clock as their current names; Etc/UTC is what many images report.
    assert str(validate_timezone(name)) == name


@pytest.mark.parametrize(("name", "meant"), [
    ("America/NewYork", "America/New_York"),
    ("america/new york", "America/New_York"),
    ("America/New-York", "America/New_York"),
    ("Europe/Berln", "Europe/Berlin"),
    ("Amerca/Chicago", "America/Chicago"),
    ("Berlin", "Europe/Berlin"),
    ("New York", "America/New_York"),
    ("kolkata", "Asia/Kolkata"),
    ("us/eastern", "America/New_York"),  # a legacy name typed loosely: its regional zone
    ("est", "America/New_York"),
    ("utc", "UTC"),
])
def test_near_misses_get_a_suggestion(name: str, meant: str) -> None:
    assert error_of(validate_timezone, name).endswith(f"did you mean '{meant}'?")


def test_non_string_zone() -> None:
    assert "must be a string" in error_of(validate_timezone, 5)
    assert "must be a string, not list" in error_of(validate_timezone, ["UTC"])


def test_unknown_dst_policies() -> None:
    assert error_of(
        CronSpec, "0 0 * * *", "UTC", dst_gap="later") == "dst_gap: 'later' is not one of skip, shift"
    assert error_of(
        CronSpec, "0 0 * * *", "UTC", dst_fold="twice") == "dst_fold: 'twice' is not one of first, last, both"


def test_naive_datetimes_are_refused_everywhere() -> None:
    plan = Plan(CronSpec("0 0 * * *"))
    assert "after must be timezone-aware" in error_of(next_tick, plan, after=NAIVE)
    assert "last_finished_at must be timezone-aware" in error_of(
        next_tick, plan, after=NOW, last_finished_at=NAIVE)
    assert "until must be timezone-aware" in error_of(ticks_between, plan, after=NOW, until=NAIVE)
    assert "after must be timezone-aware" in error_of(ticks_between, plan, after=NAIVE, until=NOW)
    assert "start_at must be timezone-aware" in error_of(Plan, CronSpec("0 0 * * *"), start_at=NAIVE)
    assert "end_at must be timezone-aware" in error_of(Plan, CronSpec("0 0 * * *"), end_at=NAIVE)
    assert "anchor must be timezone-aware" in error_of(IntervalSpec, timedelta(minutes=5), NAIVE)
    assert "run_at must be timezone-aware" in error_of(OnceSpec, NAIVE)


def test_a_date_is_not_a_datetime() -> None:
    assert "after must be a datetime, not date" in error_of(
        next_tick, Plan(CronSpec("0 0 * * *")), after=NOW.date())


@pytest.mark.parametrize("limit", [MAX_TICKS + 1, 1_000_000, 0, -1])
def test_limits_outside_the_bound(limit: int) -> None:
    message = error_of(ticks_between, Plan(CronSpec("* * * * *")), after=NOW,
                       until=NOW + timedelta(days=30), limit=limit)
    assert f"limit must be between 1 and {MAX_TICKS}" in message


@pytest.mark.parametrize("every", [timedelta(0), timedelta(seconds=-1), timedelta(days=-3)])
def test_zero_and_negative_intervals(every: timedelta) -> None:
    assert "interval: every must be positive" in error_of(IntervalSpec, every, NOW)


def test_interval_must_be_a_timedelta() -> None:
    assert "every must be a timedelta, not int" in error_of(IntervalSpec, 300, NOW)


def test_plan_window_values() -> None:
    spec = CronSpec("0 0 * * *")
    assert "max_runs must not be negative" in error_of(Plan, spec, max_runs=-1)
    assert "jitter must not be negative" in error_of(Plan, spec, jitter=timedelta(seconds=-1))
    assert "spec must be a CronSpec, IntervalSpec or OnceSpec" in error_of(Plan, "0 0 * * *")
    assert "jitter must be a timedelta, not int" in error_of(Plan, spec, jitter=30)

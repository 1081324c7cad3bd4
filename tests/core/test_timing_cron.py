"""What a valid expression means: names, ranges, steps, 7 = Sunday, the OR rule, macros,
and the extensions L, L-n, nW, LW, nL, n#k and ?.

Timelines in UTC, where wall time and instants coincide.
"""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.timing import CronSpec, Plan, ticks_between

UTC = UTC


def fires(expr: str, after: str, until: str) -> list[str]:
    plan = Plan(CronSpec(expr))
    ticks = ticks_between(plan, after=_utc(after), until=_utc(until), limit=10_000)
    return [f"{tick.at:%a %Y-%m-%d %H:%M}" for tick in ticks]


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_minute_lists_ranges_and_steps() -> None:
    assert fires("5,10-12,50-59/4 3 * * *", "2026-01-01", "2026-01-02") == [
        "Thu 2026-01-01 03:05", "Thu 2026-01-01 03:10", "Thu 2026-01-01 03:11",
        "Thu 2026-01-01 03:12", "Thu 2026-01-01 03:50", "Thu 2026-01-01 03:54",
        "Thu 2026-01-01 03:58",
    ]


def test_a_value_with_a_step_runs_to_the_end_of_the_field() -> None:
    assert fires("45/5 0 * * *", "2026-01-01", "2026-01-02") == [
        "Thu 2026-01-01 00:45", "Thu 2026-01-01 00:50", "Thu 2026-01-01 00:55",
    ]


def test_day_names_ranges_and_case() -> None:
    assert fires("0 12 * * mon-Wed,FRI", "2026-01-04", "2026-01-11") == [
        "Mon 2026-01-05 12:00", "Tue 2026-01-06 12:00", "Wed 2026-01-07 12:00",
        "Fri 2026-01-09 12:00",
    ]


@pytest.mark.parametrize("sunday", ["0", "7", "SUN", "sun", "6-7"])
def test_seven_is_sunday(sunday: str) -> None:
    ticks = fires(f"0 0 * * {sunday}", "2026-01-01", "2026-01-12")
    assert "Sun 2026-01-04 00:00" in ticks and "Sun 2026-01-11 00:00" in ticks


def test_month_names() -> None:
    assert fires("0 0 1 jan,JUL *", "2026-01-01", "2027-01-02") == [
        "Wed 2026-07-01 00:00", "Fri 2027-01-01 00:00",
    ]


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # Vixie cron: the 13th OR any Friday.
    assert fires("0 0 13 * FRI", "2026-02-01", "2026-03-01") == [
        "Fri 2026-02-06 00:00", "Fri 2026-02-13 00:00", "Fri 2026-02-20 00:00",
        "Fri 2026-02-27 00:00",
    ]
    assert fires("0 0 13 * MON", "2026-02-01", "2026-02-17") == [
        "Mon 2026-02-02 00:00", "Mon 2026-02-09 00:00", "Fri 2026-02-13 00:00",
        "Mon 2026-02-16 00:00",
    ]


def test_a_star_prefixed_day_field_ands_as_in_vixie_cron() -> None:
    # "*/2" starts with "*": odd days AND Mondays, not odd days OR Mondays.
    assert fires("0 0 */2 * MON", "2026-02-01", "2026-03-01") == [
        "Mon 2026-02-09 00:00", "Mon 2026-02-23 00:00",
    ]


def test_february_29th_waits_for_a_leap_year() -> None:
    assert fires("0 0 29 2 *", "2026-01-01", "2033-01-01") == [
        "Tue 2028-02-29 00:00", "Sun 2032-02-29 00:00",
    ]


def test_a_rare_combination_is_found_without_walking() -> None:
    # "*/7" is Sunday and starts with "*", so it ANDs: a 29 February that is a Sunday.
    assert fires("0 0 29 2 */7", "2026-01-01", "2061-01-01") == [
        "Sun 2032-02-29 00:00", "Sun 2060-02-29 00:00",
    ]


@pytest.mark.parametrize(("macro", "expansion"), [
    ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"), ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"), ("@DAILY", "0 0 * * *"),
])
def test_macros_mean_their_expansion(macro: str, expansion: str) -> None:
    window = ("2026-01-01", "2028-01-01")
    assert fires(macro, *window) == fires(expansion, *window)
    assert fires(macro, *window)


# --- Extensions: one meaning each. Calendars for the months used below:
# 2026-02 and 2026-03 start on a Sunday; 2026-08 on a Saturday; 2026-05 ends on a
# Sunday; 2025-11 ends on a Sunday (the 30th).

def test_l_is_the_last_day_of_the_month() -> None:
    assert fires("0 0 L * *", "2026-01-01", "2026-05-01") == [
        "Sat 2026-01-31 00:00", "Sat 2026-02-28 00:00", "Tue 2026-03-31 00:00", "Thu 2026-04-30 00:00",
    ]
    assert fires("0 0 L 2 *", "2026-01-01", "2029-01-01") == [
        "Sat 2026-02-28 00:00", "Sun 2027-02-28 00:00", "Tue 2028-02-29 00:00",
    ]


def test_l_minus_n_counts_back_from_the_last_day() -> None:
    assert fires("0 9 L-2 * *", "2026-01-01", "2026-04-01") == [
        "Thu 2026-01-29 09:00", "Thu 2026-02-26 09:00", "Sun 2026-03-29 09:00",
    ]


def test_l_minus_n_before_the_first_is_no_day_that_month() -> None:
    # February has no "L-28" in a common year: 28 - 28 is day 0.
    assert fires("0 0 L-28 2 *", "2026-01-01", "2033-01-01") == [
        "Tue 2028-02-01 00:00", "Sun 2032-02-01 00:00",
    ]


def test_w_is_the_nearest_weekday() -> None:
    # 15 Feb and 15 Mar 2026 are Sundays: Monday the 16th. 15 Aug is a Saturday: Friday the 14th.
    assert fires("0 0 15W * *", "2026-02-01", "2026-09-01") == [
        "Mon 2026-02-16 00:00", "Mon 2026-03-16 00:00", "Wed 2026-04-15 00:00", "Fri 2026-05-15 00:00",
        "Mon 2026-06-15 00:00", "Wed 2026-07-15 00:00", "Fri 2026-08-14 00:00",
    ]


def test_w_never_crosses_into_another_month() -> None:
    # Saturday 1 August 2026: not Friday 31 July, but Monday the 3rd.
    assert fires("0 0 1W * *", "2026-07-01", "2026-09-01") == [
        "Mon 2026-08-03 00:00", "Tue 2026-09-01 00:00",
    ]
    # Sunday 31 May 2026: not Monday 1 June, but Friday the 29th.
    assert fires("0 0 31W * *", "2026-05-01", "2026-06-10") == ["Fri 2026-05-29 00:00"]
    # Sunday 30 November 2025 is the last day: Friday the 28th.
    assert fires("0 0 30W 11 *", "2025-11-01", "2025-12-01") == ["Fri 2025-11-28 00:00"]


def test_w_for_a_day_the_month_does_not_have_is_no_day_like_the_plain_day() -> None:
    assert fires("0 0 31W * *", "2026-04-01", "2026-05-01") == fires("0 0 31 * *", "2026-04-01", "2026-05-01") == []


def test_lw_is_the_last_weekday() -> None:
    assert fires("0 0 LW * *", "2026-01-01", "2026-06-01") == [
        "Fri 2026-01-30 00:00", "Fri 2026-02-27 00:00", "Tue 2026-03-31 00:00", "Thu 2026-04-30 00:00",
        "Fri 2026-05-29 00:00",
    ]


@pytest.mark.parametrize("last_friday", ["5L", "FRIL", "fril", "5l"])
def test_nl_is_the_last_such_weekday(last_friday: str) -> None:
    assert fires(f"0 0 * * {last_friday}", "2026-01-01", "2026-04-01") == [
        "Fri 2026-01-30 00:00", "Fri 2026-02-27 00:00", "Fri 2026-03-27 00:00",
    ]


@pytest.mark.parametrize("second_monday", ["1#2", "MON#2", "mon#2"])
def test_hash_is_the_nth_weekday(second_monday: str) -> None:
    assert fires(f"0 0 * * {second_monday}", "2026-01-01", "2026-04-01") == [
        "Mon 2026-01-12 00:00", "Mon 2026-02-09 00:00", "Mon 2026-03-09 00:00",
    ]


def test_a_fifth_weekday_fires_only_in_months_that_have_one() -> None:
    assert fires("0 0 * * MON#5", "2026-01-01", "2027-01-01") == [
        "Mon 2026-03-30 00:00", "Mon 2026-06-29 00:00", "Mon 2026-08-31 00:00", "Mon 2026-11-30 00:00",
    ]


@pytest.mark.parametrize("sunday", ["0", "7", "SUN"])
def test_seven_is_sunday_in_extensions_too(sunday: str) -> None:
    window = ("2026-01-01", "2027-01-01")
    assert fires(f"0 0 * * {sunday}L", *window) == fires("0 0 * * 0L", *window)
    assert fires(f"0 0 * * {sunday}#1", *window)[:2] == ["Sun 2026-01-04 00:00", "Sun 2026-02-01 00:00"]


def test_extensions_are_list_items_like_any_other() -> None:
    assert fires("0 0 1,L * *", "2026-01-01", "2026-03-05") == [
        "Sat 2026-01-31 00:00", "Sun 2026-02-01 00:00", "Sat 2026-02-28 00:00", "Sun 2026-03-01 00:00",
    ]
    assert fires("0 0 * * 3,5L", "2026-01-01", "2026-02-01") == [
        "Wed 2026-01-07 00:00", "Wed 2026-01-14 00:00", "Wed 2026-01-21 00:00", "Wed 2026-01-28 00:00",
        "Fri 2026-01-30 00:00",
    ]
    assert fires("0 0 * * 1#1,5L", "2026-01-01", "2026-03-01") == [
        "Mon 2026-01-05 00:00", "Fri 2026-01-30 00:00", "Mon 2026-02-02 00:00", "Fri 2026-02-27 00:00",
    ]


@pytest.mark.parametrize(("quartz", "vixie"), [
    ("0 0 ? * MON", "0 0 * * MON"), ("0 0 1 * ?", "0 0 1 * *"), ("0 0 ? * ?", "0 0 * * *"),
    ("0 0 L * ?", "0 0 L * *"), ("0 0 ? * 5L", "0 0 * * 5L"),
])
def test_question_mark_is_star(quartz: str, vixie: str) -> None:
    window = ("2026-01-01", "2026-04-01")
    assert fires(quartz, *window) == fires(vixie, *window)
    assert fires(quartz, *window)

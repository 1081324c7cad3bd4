"""What a valid expression means: names, ranges, steps, 7 = Sunday, the OR rule, macros.

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

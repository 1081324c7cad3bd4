"""preview_schedule shows the cron extensions and the zone refusals as the engine defines them."""
from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from schedules.models import Agent, Schedule

AFTER = ("--after", "2026-01-01T00:00:00Z")


def preview(*args: str) -> str:
    out = StringIO()
    call_command("preview_schedule", *args, stdout=out)
    return out.getvalue()


def preview_json(*args: str) -> list[dict[str, Any]]:
    rows = json.loads(preview(*args, "--json"))
    assert isinstance(rows, list)
    return rows


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as raised:
        preview(*args)
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_second_monday_as_a_table() -> None:
    assert preview("--cron", "0 9 * * MON#2", "--tz", "Europe/Berlin", *AFTER, "--count", "3").splitlines() == [
        "'0 9 * * MON#2' in Europe/Berlin (dst_gap=skip, dst_fold=first), after 2026-01-01T00:00:00Z",
        "tick_at (UTC)         local                      fires at (UTC)        note",
        "2026-01-12T08:00:00Z  2026-01-12T09:00:00+01:00  2026-01-12T08:00:00Z",
        "2026-02-09T08:00:00Z  2026-02-09T09:00:00+01:00  2026-02-09T08:00:00Z",
        "2026-03-09T08:00:00Z  2026-03-09T09:00:00+01:00  2026-03-09T08:00:00Z",
    ]


def test_last_weekday_of_the_month_in_new_york() -> None:
    rows = preview_json("--cron", "0 18 LW * ?", "--tz", "America/New_York", *AFTER, "--count", "3")
    assert [row["local"] for row in rows] == [
        "2026-01-30T18:00:00-05:00", "2026-02-27T18:00:00-05:00", "2026-03-31T18:00:00-04:00",
    ]


def test_the_last_sunday_of_march_and_october_carries_the_dst_notes() -> None:
    rows = preview_json("--cron", "30 2 * 3,10 SUNL", "--tz", "Europe/Berlin", *AFTER, "--count", "2")
    assert [(row["at"], row["note"], row["runs"]) for row in rows] == [
        ("2026-03-29T01:30:00Z", "dst_gap_skipped", False),
        ("2026-10-25T00:30:00Z", "dst_fold_first", True),
    ]


@pytest.mark.parametrize(("expr", "first"), [
    ("0 0 L * *", "2026-01-31T00:00:00Z"),
    ("0 0 L-2 * *", "2026-01-29T00:00:00Z"),
    ("0 0 15W 2 *", "2026-02-16T00:00:00Z"),   # the 15th is a Sunday
    ("0 0 * * 5L", "2026-01-30T00:00:00Z"),
    ("0 0 ? * 1#1", "2026-01-05T00:00:00Z"),
])
def test_each_extension_previews_its_first_tick(expr: str, first: str) -> None:
    assert preview_json("--cron", expr, *AFTER, "--count", "1")[0]["at"] == first


@pytest.mark.parametrize(("args", "says"), [
    (("--cron", "0 0 L * MON"), "need the other day field to be * or ?"),
    (("--cron", "0 0 * * L"), "'L' in the day-of-week field is not supported; alone it is ambiguous"),
    (("--cron", "H * * * *"), "'H' in the minute field is not supported; H is Jenkins' hashed value"),
    (("--cron", "CRON_TZ=America/New_York 0 9 * * *"),
     "a 'CRON_TZ=' prefix is not supported; set the schedule's timezone to 'America/New_York' instead"),
    (("--cron", "0 9 * * *", "--tz", "EST"),
     "timezone: 'EST' is UTC-05:00 all year, never EDT; use a regional zone such as 'America/New_York'"),
    (("--cron", "0 9 * * *", "--tz", "Etc/GMT+5"), "is a fixed offset, UTC-05:00 all year"),
    (("--cron", "0 9 * * *", "--tz", "America/NewYork"),
     "timezone: unknown zone 'America/NewYork'; did you mean 'America/New_York'?"),
])
def test_refusals_are_one_line_naming_the_construct(args: tuple[str, ...], says: str) -> None:
    assert says in refused(*args)


@pytest.mark.django_db
def test_a_stored_schedule_with_an_extension() -> None:
    agent = Agent.objects.create(name="closer")
    Schedule.objects.create(agent=agent, name="month-end", cron="0 17 LW * *", timezone="Europe/London")
    rows = preview_json("closer/month-end", *AFTER, "--count", "2")
    assert [row["local"] for row in rows] == ["2026-01-30T17:00:00+00:00", "2026-02-27T17:00:00+00:00"]

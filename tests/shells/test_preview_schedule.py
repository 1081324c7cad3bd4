"""preview_schedule: the fire-time contract, checked from outside the engine."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from schedules.models import Agent, Schedule

ROOT = Path(__file__).resolve().parents[2]
UTC = UTC


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


NY_SPRING = ("--cron", "30 2 * * *", "--tz", "America/New_York", "--after", "2026-03-07T00:00:00Z")


def test_the_contract_example_as_a_table() -> None:
    assert preview(*NY_SPRING, "--count", "3").splitlines() == [
        "'30 2 * * *' in America/New_York (dst_gap=skip, dst_fold=first), after 2026-03-07T00:00:00Z",
        "tick_at (UTC)         local                      fires at (UTC)        note",
        "2026-03-07T07:30:00Z  2026-03-07T02:30:00-05:00  2026-03-07T07:30:00Z",
        "2026-03-08T07:30:00Z  2026-03-08T02:30:00-05:00  not run               dst_gap_skipped",
        "2026-03-09T06:30:00Z  2026-03-09T02:30:00-04:00  2026-03-09T06:30:00Z",
    ]


def test_the_contract_example_as_json() -> None:
    rows = preview_json(*NY_SPRING, "--count", "5")
    assert len(rows) == 5
    assert rows[:2] == [
        {"at": "2026-03-07T07:30:00Z", "local": "2026-03-07T02:30:00-05:00", "note": None,
         "fire_at": "2026-03-07T07:30:00Z", "runs": True},
        {"at": "2026-03-08T07:30:00Z", "local": "2026-03-08T02:30:00-05:00", "note": "dst_gap_skipped",
         "fire_at": "2026-03-08T07:30:00Z", "runs": False},
    ]


def test_dst_options() -> None:
    shifted = preview_json(*NY_SPRING, "--count", "2", "--dst-gap", "shift")
    assert (shifted[1]["at"], shifted[1]["note"]) == ("2026-03-08T07:00:00Z", "dst_gap_shifted")
    fall = ("--cron", "30 1 * * *", "--tz", "America/New_York", "--after", "2026-11-01T00:00:00Z",
            "--count", "2")
    assert [(r["at"], r["note"]) for r in preview_json(*fall)] == [
        ("2026-11-01T05:30:00Z", "dst_fold_first"), ("2026-11-02T06:30:00Z", None)]
    assert [(r["at"], r["note"]) for r in preview_json(*fall, "--dst-fold", "both")] == [
        ("2026-11-01T05:30:00Z", "dst_fold_first"), ("2026-11-01T06:30:00Z", "dst_fold_second")]
    assert [(r["at"], r["note"]) for r in preview_json(*fall, "--dst-fold", "last")][0] == (
        "2026-11-01T06:30:00Z", "dst_fold_second")


def test_after_accepts_any_offset() -> None:
    rows = preview_json("--cron", "0 * * * *", "--after", "2026-03-07T09:30:00+09:00", "--count", "1")
    assert rows[0]["at"] == "2026-03-07T01:00:00Z"


def test_after_defaults_to_now() -> None:
    before = datetime.now(UTC)
    at = datetime.fromisoformat(preview_json("--cron", "* * * * *", "--count", "1")[0]["at"])
    assert before < at <= datetime.now(UTC) + timedelta(minutes=1)


def test_utc_is_the_default_zone() -> None:
    assert preview_json("--cron", "0 9 * * *", "--after", "2026-03-07T00:00:00Z", "--count", "1")[0][
        "local"] == "2026-03-07T09:00:00+00:00"


@pytest.mark.parametrize(("args", "says"), [
    (("--cron", "0 0 30 2 *"), "cron: day-of-month 30 never occurs in February ('0 0 30 2 *')"),
    (("--cron", "* * * * * *"), "cron: expected 5 fields"),
    (("--cron", "61 * * * *"), "cron: minute 61 is out of range 0-59"),
    (("--cron", "0 0 * * *", "--tz", "Mars/Base"), "timezone: unknown zone 'Mars/Base'"),
    (("--cron", "0 0 * * *", "--tz", "localtime"), "timezone: unknown zone 'localtime'"),
    (("--cron", "0 0 * * *", "--dst-gap", "later"), "dst_gap: 'later' is not one of skip, shift"),
    (("--cron", "0 0 * * *", "--dst-fold", "twice"), "dst_fold: 'twice' is not one of first, last, both"),
    (("--cron", "0 0 * * *", "--count", "0"), "--count must be a whole number from 1 to 10000, got '0'"),
    (("--cron", "0 0 * * *", "--count", "10001"), "got '10001'"),
    (("--cron", "0 0 * * *", "--count", "many"), "got 'many'"),
    (("--cron", "0 0 * * *", "--after", "2026-03-07"), "--after: '2026-03-07' has no offset"),
    (("--cron", "0 0 * * *", "--after", "soon"), "--after: 'soon' is not an ISO 8601 instant"),
    ((), "give a stored schedule (ID or AGENT/NAME) or --cron EXPRESSION"),
    (("nightly",), "schedule: expected an id or AGENT/NAME, got 'nightly'"),
])
def test_bad_input_is_one_line_naming_the_problem(args: tuple[str, ...], says: str) -> None:
    assert says in refused(*args)


def test_bad_input_exits_non_zero_from_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "preview_schedule", "--cron", "0 0 31 4 *"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "CommandError: cron: day-of-month 31 never occurs in April ('0 0 31 4 *')")


# --- stored schedules

@pytest.fixture
def agent() -> Agent:
    return Agent.objects.create(name="reporter")


@pytest.mark.django_db
def test_a_stored_schedule_by_id_and_by_agent_and_name(agent: Agent) -> None:
    schedule = Schedule.objects.create(agent=agent, name="nightly", cron="30 2 * * *",
                                       timezone="America/New_York")
    after = ("--after", "2026-03-07T00:00:00Z", "--count", "3")
    by_id = preview_json(str(schedule.pk), *after)
    assert by_id == preview_json("reporter/nightly", *after) == preview_json(*NY_SPRING, "--count", "3")
    assert preview(str(schedule.pk), *after).splitlines()[0] == (
        f"reporter/nightly (#{schedule.pk}): '30 2 * * *' in America/New_York "
        f"(dst_gap=skip, dst_fold=first), after 2026-03-07T00:00:00Z")


@pytest.mark.django_db
def test_a_stored_schedule_uses_its_own_policies_and_jitter(agent: Agent) -> None:
    schedule = Schedule.objects.create(agent=agent, name="nightly", cron="30 2 * * *",
                                       timezone="America/New_York", dst_gap="shift", jitter_seconds=600)
    rows = preview_json(str(schedule.pk), "--after", "2026-03-07T00:00:00Z", "--count", "2")
    assert [(r["at"], r["note"]) for r in rows] == [
        ("2026-03-07T07:30:00Z", None), ("2026-03-08T07:00:00Z", "dst_gap_shifted")]
    offsets = [datetime.fromisoformat(r["fire_at"]) - datetime.fromisoformat(r["at"]) for r in rows]
    assert all(timedelta(0) <= o < timedelta(minutes=10) for o in offsets)
    assert rows == preview_json(str(schedule.pk), "--after", "2026-03-07T00:00:00Z", "--count", "2")


@pytest.mark.django_db
def test_a_stored_interval_schedule(agent: Agent) -> None:
    start = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)
    schedule = Schedule.objects.create(agent=agent, name="poll", kind="interval", cron="",
                                       interval_seconds=5400, start_at=start)
    rows = preview_json(str(schedule.pk), "--after", "2026-03-08T00:00:00Z", "--count", "3")
    assert [r["at"] for r in rows] == [
        "2026-03-08T06:00:00Z", "2026-03-08T07:30:00Z", "2026-03-08T09:00:00Z"]
    assert {r["note"] for r in rows} == {None}


@pytest.mark.django_db
def test_a_stored_schedule_stops_at_max_runs(agent: Agent) -> None:
    schedule = Schedule.objects.create(agent=agent, name="thrice", cron="0 * * * *", max_runs=3,
                                       run_count=2)
    assert len(preview_json(str(schedule.pk), "--after", "2026-03-07T00:00:00Z", "--count", "5")) == 1


@pytest.mark.django_db
def test_unknown_and_deleted_schedules_are_refused(agent: Agent) -> None:
    gone = Schedule.objects.create(agent=agent, name="gone", cron="0 * * * *",
                                   deleted_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert refused(str(gone.pk)) == f"schedule: no schedule '{gone.pk}'"
    assert refused("reporter/gone") == "schedule: no schedule 'reporter/gone'"
    assert refused("nobody/nightly") == "schedule: no schedule 'nobody/nightly'"


@pytest.mark.django_db
def test_cron_options_do_not_apply_to_a_stored_schedule(agent: Agent) -> None:
    schedule = Schedule.objects.create(agent=agent, name="nightly", cron="30 2 * * *")
    assert refused(str(schedule.pk), "--tz", "UTC", "--dst-fold", "both") == (
        "--tz, --dst-fold: only with --cron; a stored schedule has its own zone and DST policies")
    assert refused(str(schedule.pk), "--cron", "* * * * *") == "give a stored schedule or --cron, not both"

"""Every management command answers hostile arguments with a one-line error, never a traceback.

Unicode digits (``int("١")`` is 1), lone surrogates (what Python makes of a
non-UTF-8 argument), NUL bytes, huge and negative numbers and extreme dates,
in-process through ``call_command`` (the parsing the command line does), and
as real ``manage.py`` processes for the bytes a terminal can send.
"""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from runs.models import Run, RunState, Trigger
from schedules.models import Agent, Schedule
from schedules.selectors import ScheduleNotFound, ScheduleRefInvalid, schedule_lookup

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
HUGE = "9" * 5000  # past int()'s 4300-digit limit for str conversion
BIG = "9" * 30     # past a bigint


@pytest.fixture
def schedule(db) -> Schedule:
    # Schedule #1 exists, so a Unicode "1" that slipped through would find it.
    agent = Agent.objects.create(name="demo")
    return Schedule.objects.create(pk=1, agent=agent, name="minutely", cron="* * * * *")


@pytest.fixture
def dead_run(schedule: Schedule) -> Run:
    return Run.objects.create(pk=1, schedule=schedule, agent=schedule.agent, trigger=Trigger.SCHEDULE,
                              tick_at=NOW, state=RunState.DEAD, idempotency_key="k1", attempt=3)


def refused(name: str, *args: str, **options: Any) -> str:
    with pytest.raises(CommandError) as raised:
        call_command(name, *args, stdout=StringIO(), stderr=StringIO(), **options)
    message = str(raised.value)
    assert message and "\n" not in message and message.isprintable(), message
    return message


# --- the one lookup

SCHEDULE_REFS = [
    ("²", "schedule: expected an id or AGENT/NAME, got '²'"),
    ("١", "schedule: expected an id or AGENT/NAME, got '١'"),
    ("\udcff", "schedule: expected an id or AGENT/NAME, got '\\udcff'"),
    ("", "schedule: expected an id or AGENT/NAME, got ''"),
    ("-1", "schedule: expected an id or AGENT/NAME, got '-1'"),
    ("+1", "schedule: expected an id or AGENT/NAME, got '+1'"),
    (" 1", "schedule: expected an id or AGENT/NAME, got ' 1'"),
    ("1.0", "schedule: expected an id or AGENT/NAME, got '1.0'"),
    (HUGE, f"schedule: no schedule '{'9' * 100}...'"),
    (BIG, f"schedule: no schedule '{BIG}'"),
    ("9223372036854775808", "schedule: no schedule '9223372036854775808'"),
    ("demo/\udcff", "schedule: no schedule 'demo/\\udcff'"),
    ("demo/min\x00utely", "schedule: no schedule 'demo/min\\x00utely'"),
    ("demo/minutely\n", "schedule: no schedule 'demo/minutely\\n'"),
    ("demo/", "schedule: no schedule 'demo/'"),
    ("/minutely", "schedule: no schedule '/minutely'"),
    ("demo/minutely/x", "schedule: no schedule 'demo/minutely/x'"),
    ("demo/١", "schedule: no schedule 'demo/١'"),
    ("2", "schedule: no schedule '2'"),
]


@pytest.mark.parametrize(("ref", "says"), SCHEDULE_REFS)
def test_the_lookup_refuses_in_one_line(schedule: Schedule, ref: str, says: str) -> None:
    with pytest.raises((ScheduleRefInvalid, ScheduleNotFound)) as raised:
        schedule_lookup(ref)
    assert str(raised.value) == says


def test_the_lookup_finds_by_ascii_id_and_by_agent_and_name(schedule: Schedule) -> None:
    assert schedule_lookup("1") == schedule_lookup("0001") == schedule_lookup("demo/minutely") == schedule


def test_the_lookup_skips_deleted_schedules(schedule: Schedule) -> None:
    Schedule.objects.filter(pk=schedule.pk).update(deleted_at=NOW)
    with pytest.raises(ScheduleNotFound):
        schedule_lookup("demo/minutely")


# --- run_now

@pytest.mark.parametrize(("ref", "says"), SCHEDULE_REFS)
def test_run_now_refuses_a_bad_schedule_and_starts_nothing(schedule: Schedule, ref: str, says: str) -> None:
    assert refused("run_now", ref) == says
    assert not Run.objects.exists()


@pytest.mark.parametrize("timeout", ["-5", "0", "nan", "inf", "-inf", "1e999", "1e3", "١", "²", "86401",
                                     BIG, HUGE, "\udcff", "", "5s", " 5"])
def test_run_now_refuses_a_bad_timeout_before_starting_anything(schedule: Schedule, timeout: str) -> None:
    says = refused("run_now", "--wait", "--timeout", timeout, "demo/minutely")
    # argparse itself takes "-inf" for an option, not a value: its own one-line error then.
    assert says.startswith(("--timeout must be a number of seconds above 0 and at most 86400, got '",
                            "Error: argument --timeout: expected one argument")), says
    assert not Run.objects.exists()


@pytest.mark.parametrize("timeout", [-5, 0, float("nan"), float("inf"), 10**400, True])
def test_run_now_refuses_a_bad_timeout_given_as_a_keyword(schedule: Schedule, timeout: object) -> None:
    assert refused("run_now", "demo/minutely", wait=True, timeout=timeout).startswith("--timeout must be")
    assert not Run.objects.exists()


def test_run_now_still_starts_a_run(schedule: Schedule, django_capture_on_commit_callbacks) -> None:
    out = StringIO()
    with django_capture_on_commit_callbacks():
        call_command("run_now", "1", "--timeout", "2.5", stdout=out)
    run = Run.objects.get(schedule=schedule)
    assert out.getvalue().startswith(f"run {run.pk} pending (manual")


def test_run_now_of_an_inactive_agent_is_refused_in_one_line(schedule: Schedule) -> None:
    Agent.objects.filter(pk=schedule.agent.pk).update(is_active=False)
    assert refused("run_now", "demo/minutely") == "agent 'demo' is inactive: activate it to run demo/minutely"
    assert not Run.objects.exists()


# --- dlq

@pytest.mark.parametrize("run_id", ["²", "١", "\udcff", "-1", "0", "1.0", " 1", BIG, HUGE, "9223372036854775808"])
def test_dlq_replay_refuses_a_bad_run_id_and_replays_nothing(dead_run: Run, run_id: str) -> None:
    says = refused("dlq", "replay", run_id)
    assert says.startswith("RUN_ID must be a whole number from 1 to 9223372036854775807, got '")
    assert Run.objects.get(pk=1).state == RunState.DEAD


def test_dlq_replay_of_a_missing_run_is_one_line(dead_run: Run) -> None:
    assert refused("dlq", "replay", "9223372036854775807") == "no run 9223372036854775807"


@pytest.mark.parametrize(("ref", "says"), SCHEDULE_REFS)
def test_dlq_replay_refuses_a_bad_schedule(dead_run: Run, ref: str, says: str) -> None:
    assert refused("dlq", "replay", "--schedule", ref) == says
    assert Run.objects.get(pk=1).state == RunState.DEAD


@pytest.mark.parametrize(("args", "says"), [
    (("\udcff",), "Error: argument action: invalid choice: '\\udcff'"),
    (("replay",), "replay needs RUN_ID or --schedule"),
    (("replay", "1", "--schedule", "demo/minutely"), "replay takes RUN_ID or --schedule, not both"),
    (("list", "1"), "list takes no RUN_ID or --schedule"),
])
def test_dlq_refuses_bad_shapes(dead_run: Run, args: tuple[str, ...], says: str) -> None:
    assert says in refused("dlq", *args)
    assert Run.objects.get(pk=1).state == RunState.DEAD


# --- preview_schedule

@pytest.mark.parametrize(("ref", "says"), SCHEDULE_REFS)
def test_preview_refuses_a_bad_schedule(schedule: Schedule, ref: str, says: str) -> None:
    if ref == "":  # an empty positional is no schedule at all
        says = "give a stored schedule (ID or AGENT/NAME) or --cron EXPRESSION"
    assert refused("preview_schedule", ref) == says


CRON = ("--cron", "0 * * * *")


@pytest.mark.parametrize("count", ["²", "١", "-5", "0", "10001", BIG, HUGE, "\udcff", "", "1.0", " 5"])
def test_preview_refuses_a_bad_count(count: str) -> None:
    assert refused("preview_schedule", *CRON, "--count", count).startswith(
        "--count must be a whole number from 1 to 10000, got '")


@pytest.mark.parametrize("count", [0, -5, 10**400, True, 2.5])
def test_preview_refuses_a_bad_count_given_as_a_keyword(count: object) -> None:
    assert refused("preview_schedule", *CRON, count=count).startswith("--count must be a whole number")


def test_preview_takes_count_as_a_keyword() -> None:
    out = StringIO()
    call_command("preview_schedule", *CRON, "--after", "2026-03-07T00:00:00Z", count=5, json=True, stdout=out)
    assert out.getvalue().count('"at"') == 5


@pytest.mark.parametrize(("after", "says"), [
    ("0001-01-01T00:00:00+05:00", "is outside the range of dates in UTC"),
    ("9999-12-31T23:59:59-05:00", "is outside the range of dates in UTC"),
    ("２０２６-03-07T00:00:00Z", "is not an ISO 8601 instant"),
    ("2026-03-07T00:00:00+٠٥:00", "is not an ISO 8601 instant"),
    ("\udcff", "is not an ISO 8601 instant"),
    ("2026-03-07\x00", "is not an ISO 8601 instant"),
    ("2026-02-30T00:00:00Z", "is not an ISO 8601 instant"),
    ("10000-01-01T00:00:00Z", "is not an ISO 8601 instant"),
    ("2026-03-07T00:00:00", "has no offset"),
])
def test_preview_refuses_a_bad_after(after: str, says: str) -> None:
    assert says in refused("preview_schedule", *CRON, "--after", after)


@pytest.mark.parametrize("after", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00-05:00",
                                   "9999-12-31T23:59:59Z", "9999-12-31T23:59:59+14:00"])
@pytest.mark.parametrize("cron", ["0 * * * *", "30 2 * * *"])
def test_preview_at_the_ends_of_time_answers(after: str, cron: str) -> None:
    out = StringIO()
    call_command("preview_schedule", "--cron", cron, "--tz", "America/New_York", "--after", after,
                 "--count", "3", stdout=out)
    assert "after" in out.getvalue().splitlines()[0]


@pytest.mark.django_db
@pytest.mark.parametrize("after", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_preview_of_stored_interval_and_one_shot_schedules_at_the_ends_of_time(after: str) -> None:
    agent = Agent.objects.create(name="edge")
    Schedule.objects.create(agent=agent, name="poll", kind="interval", cron="", interval_seconds=2_000_000_000,
                            start_at=datetime(2026, 1, 1, tzinfo=UTC))
    Schedule.objects.create(agent=agent, name="once", kind="once", cron="", run_at=datetime(9997, 1, 1, tzinfo=UTC))
    for ref in ("edge/poll", "edge/once"):
        call_command("preview_schedule", ref, "--after", after, "--count", "3", stdout=StringIO())


@pytest.mark.parametrize(("args", "says"), [
    (("--cron", "١ * * * *"), "cron: '١' in the minute field is not a number"),
    (("--cron", "\udcff * * * *"), "cron: '\\udcff' in the minute field is not a number"),
    (("--cron", f"{HUGE} * * * *"), ""),
    (("--cron", "0 0 * * *", "--tz", "\udcff"), "timezone: unknown zone '\\udcff'"),
    (("--cron", "0 0 * * *", "--tz", "America/New_York\x00"), "timezone: unknown zone"),
    (("--cron", "0 0 * * *", "--tz", ""), "timezone: empty name"),
    (("--cron", "0 0 * * *", "--dst-gap", "a\nb"), "dst_gap: 'a\\nb' is not one of skip, shift"),
    (("--cron", "0 0 * * *", "--dst-fold", "\udcff"), "dst_fold: '\\udcff' is not one of first, last, both"),
])
def test_preview_refuses_bad_cron_options_in_one_line(args: tuple[str, ...], says: str) -> None:
    assert says in refused("preview_schedule", *args)


# --- seed_demo

def test_seed_demo_refuses_arguments() -> None:
    # argparse's own message quotes the argument as given; the command line prints it escaped (below).
    with pytest.raises(CommandError, match="unrecognized arguments"):
        call_command("seed_demo", "\udcff", stdout=StringIO())


# --- workspace and api_key

@pytest.mark.parametrize("args", [
    ("workspace", "create", "\udcff"),
    ("workspace", "create", "a\x00"),
    ("workspace", "create", "ok", "--name", "\udcff"),
    ("workspace", "create", "ok", "--name", "x" * 201),
    ("workspace", "member", "\udcff", "root", "--role", "admin"),
    ("workspace", "member", "default", "\x00", "--role", "admin"),
    ("api_key", "create", "--workspace", "\udcff", "--user", "root", "--name", "n"),
    ("api_key", "create", "--workspace", "default", "--user", "\udcff", "--name", "n"),
    ("api_key", "create", "--workspace", "default", "--user", "root", "--name", "n",
     "--expires", "0001-01-01T00:00:00+05:00"),
    ("api_key", "create", "--workspace", "default", "--user", "root", "--name", "x" * 101),
    ("api_key", "list", "--workspace", "\udcff"),
    ("api_key", "revoke", "\udcff"),
    ("api_key", "revoke", "١"),
])
def test_workspace_and_api_key_commands_refuse_in_one_line(db, args: tuple[str, ...]) -> None:
    from django.contrib.auth import get_user_model

    from workspaces.models import default_workspace

    default_workspace()
    get_user_model().objects.create_user("root")
    refused(*args)


# --- the real command line: bytes that are not UTF-8, exit codes, no tracebacks

HOSTILE_COMMAND_LINES: list[tuple[list[str | bytes], str]] = [
    (["run_now", b"\xff"], "CommandError: schedule: expected an id or AGENT/NAME, got '\\udcff'"),
    (["run_now", b"demo/\xff"], "CommandError: schedule: no schedule 'demo/\\udcff'"),
    (["run_now", "²"], "CommandError: schedule: expected an id or AGENT/NAME, got '²'"),
    (["run_now", "١"], "CommandError: schedule: expected an id or AGENT/NAME, got '١'"),
    (["run_now", "--wait", "--timeout", "-5", "demo/minutely"],
     "CommandError: --timeout must be a number of seconds above 0 and at most 86400, got '-5'"),
    (["preview_schedule", b"\xff"], "CommandError: schedule: expected an id or AGENT/NAME, got '\\udcff'"),
    (["preview_schedule", b"demo/\xfe\xff"], "CommandError: schedule: no schedule 'demo/\\udcfe\\udcff'"),
    (["preview_schedule", "--cron", "* * * * *", "--after", "0001-01-01T00:00:00+05:00"],
     "is outside the range of dates in UTC"),
    (["preview_schedule", "--cron", b"\xff * * * *"], "in the minute field is not a number"),
    (["dlq", "replay", "--schedule", b"demo/\xff"], "CommandError: schedule: no schedule 'demo/\\udcff'"),
    (["dlq", "replay", b"\xff"], "CommandError: RUN_ID must be a whole number"),
    (["workspace", "create", "ok", "--name", b"\xff"], "CommandError: --name: printable text"),
    (["seed_demo", b"\xff"], "error: unrecognized arguments: \\udcff"),
    (["dlq", b"\xff"], "error: argument action: invalid choice: '\\udcff'"),
]


def _manage(argv: list[str | bytes], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "manage.py", *argv], cwd=ROOT, env=env, capture_output=True, timeout=300)


def test_hostile_command_lines_exit_non_zero_with_one_line_and_no_traceback(process_env: dict[str, str]) -> None:
    agent = Agent.objects.create(name="demo")
    Schedule.objects.create(pk=1, agent=agent, name="minutely", cron="* * * * *")
    # A few at a time: each is a whole Django start-up, and they do not depend on each other.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda argv: _manage(argv, process_env), [argv for argv, _ in HOSTILE_COMMAND_LINES]))
    for result, (argv, says) in zip(results, HOSTILE_COMMAND_LINES):
        stderr = result.stderr.decode("utf-8", "replace")
        shown = [os.fsdecode(arg) if isinstance(arg, bytes) else arg for arg in argv]
        assert result.returncode != 0, (shown, result.stdout, stderr)
        assert "Traceback" not in stderr, (shown, stderr)
        assert says in stderr.strip().splitlines()[-1], (shown, stderr)
    assert not Run.objects.exists()

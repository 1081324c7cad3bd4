"""Model validation: every bad input is a clear error naming the field."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from schedules.models import Agent, Schedule


@pytest.fixture
def agent(db):
    return Agent.objects.create(name="reporter", adapter="echo")


def errors_of(schedule: Schedule) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        schedule.full_clean()
    return caught.value.message_dict


def test_valid_cron_schedule_passes(agent):
    Schedule(agent=agent, name="daily", cron="30 2 * * *", timezone="Europe/Berlin",
             input_template="Report for {{date}}").full_clean()


@pytest.mark.parametrize("expr", ["61 * * * *", "* * *", "banana", "0 0 30 2 *"])
def test_bad_cron_expression_is_rejected(agent, expr):
    assert "cron" in errors_of(Schedule(agent=agent, name="x", cron=expr))


def test_unknown_timezone_is_rejected(agent):
    errors = errors_of(Schedule(agent=agent, name="x", cron="* * * * *", timezone="Mars/Olympus_Mons"))
    assert "timezone" in errors


def test_cron_and_interval_both_set_is_rejected(agent):
    errors = errors_of(Schedule(agent=agent, name="x", cron="* * * * *", interval_seconds=60))
    assert "interval_seconds" in errors


def test_interval_kind_needs_interval(agent):
    assert "interval_seconds" in errors_of(Schedule(agent=agent, name="x", kind="interval"))


def test_once_kind_needs_run_at(agent):
    assert "run_at" in errors_of(Schedule(agent=agent, name="x", kind="once"))


def test_template_with_unknown_variable_is_rejected(agent):
    errors = errors_of(Schedule(agent=agent, name="x", cron="* * * * *", input_template="Hi {{user_name}}"))
    assert "user_name" in errors["input_template"][0]


def test_unbalanced_template_is_rejected(agent):
    errors = errors_of(Schedule(agent=agent, name="x", cron="* * * * *", input_template="Hi {{date"))
    assert "unbalanced" in errors["input_template"][0]


@pytest.mark.parametrize("field", ["jitter_seconds", "max_runs", "timeout_seconds", "max_attempts",
                                   "missed_grace_seconds", "failure_limit", "interval_seconds"])
def test_negative_numbers_are_rejected(agent, field):
    schedule = Schedule(agent=agent, name="x", kind="interval", interval_seconds=60)
    setattr(schedule, field, -1)
    assert field in errors_of(schedule)


def test_end_before_start_is_rejected(agent):
    schedule = Schedule(agent=agent, name="x", cron="* * * * *",
                        start_at=datetime(2026, 1, 2, tzinfo=UTC),
                        end_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert "end_at" in errors_of(schedule)


def test_name_is_unique_per_agent_among_live_schedules(agent):
    Schedule.objects.create(agent=agent, name="daily", cron="0 9 * * *")
    with pytest.raises(IntegrityError):
        Schedule.objects.create(agent=agent, name="daily", cron="0 10 * * *")


def test_deleted_schedule_frees_its_name(agent):
    Schedule.objects.create(agent=agent, name="daily", cron="0 9 * * *",
                            deleted_at=datetime(2026, 1, 1, tzinfo=UTC))
    Schedule.objects.create(agent=agent, name="daily", cron="0 10 * * *")


def test_database_rejects_cron_kind_without_expression(agent):
    with pytest.raises(IntegrityError):
        Schedule.objects.create(agent=agent, name="x", kind="cron", cron="")


def test_jitter_longer_than_the_interval_is_rejected(agent):
    schedule = Schedule(agent=agent, name="x", kind="interval", interval_seconds=60, jitter_seconds=60)
    assert "jitter_seconds" in errors_of(schedule)


def test_jitter_longer_than_the_cron_spacing_is_rejected(agent):
    errors = errors_of(Schedule(agent=agent, name="x", cron="*/5 * * * *", jitter_seconds=300))
    assert "300s" in errors["jitter_seconds"][0]
    Schedule(agent=agent, name="x", cron="*/5 * * * *", jitter_seconds=299).full_clean()

"""Schedules that could never fire are refused; a schedule that runs out of ticks says it has finished."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from runs.models import Run
from schedules.models import Agent, FinishedReason, Schedule
from schedules.services import schedule_after_run, schedule_pause, schedule_resume, schedule_save, schedule_validate
from triggers.firing import schedules_fire_due

T0 = datetime(2026, 11, 22, 9, 0, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def agent(db):
    return Agent.objects.create(name="reporter")


def refused(schedule: Schedule, *, now: datetime = T0) -> dict[str, list[str]]:
    """The save's answer; nothing is written, and ``schedule_validate`` gives the same answer."""
    rows = list(Schedule.objects.values_list("pk", "version", "finished_reason"))
    with pytest.raises(ValidationError) as asked:
        schedule_validate(schedule, now=now)
    with pytest.raises(ValidationError) as saved:
        schedule_save(schedule, now=now)
    assert list(Schedule.objects.values_list("pk", "version", "finished_reason")) == rows
    assert asked.value.message_dict == saved.value.message_dict
    return saved.value.message_dict


def fresh(schedule: Schedule) -> Schedule:
    return Schedule.objects.get(pk=schedule.pk)


# Refused: schedules that could never fire.

def test_a_one_shot_in_the_past_is_refused(agent):
    errors = refused(Schedule(agent=agent, name="late", kind="once", run_at=T0 - MINUTE))
    assert "in the past" in errors["run_at"][0] and "never fire" in errors["run_at"][0]


def test_max_runs_zero_is_refused_by_the_model(agent):
    errors = refused(Schedule(agent=agent, name="none", cron="* * * * *", max_runs=0))
    assert "never fire" in errors["max_runs"][0]


def test_an_end_already_past_is_refused(agent):
    errors = refused(Schedule(agent=agent, name="over", cron="* * * * *", end_at=T0 - MINUTE))
    assert "already passed" in errors["end_at"][0] and "never fire" in errors["end_at"][0]


def test_a_start_in_the_year_9999_is_refused_by_the_model(agent):
    schedule = Schedule(agent=agent, name="far", cron="* * * * *", start_at=datetime(9999, 1, 1, tzinfo=UTC))
    assert "2200-01-01" in refused(schedule)["start_at"][0]


def test_a_window_no_tick_falls_in_is_refused(agent):
    schedule = Schedule(agent=agent, name="noon", cron="0 12 * * *", start_at=T0, end_at=T0 + timedelta(hours=1))
    assert "No tick falls" in refused(schedule)["end_at"][0]


def test_a_one_shot_outside_its_own_window_is_refused(agent):
    schedule = Schedule(agent=agent, name="x", kind="once", run_at=T0 + timedelta(hours=2),
                        end_at=T0 + timedelta(hours=1))
    assert "outside the window" in refused(schedule)["run_at"][0]


def test_a_future_one_shot_is_accepted(agent):
    schedule = schedule_save(Schedule(agent=agent, name="soon", kind="once", run_at=T0 + MINUTE), now=T0)
    assert (schedule.next_fire_at, schedule.finished_reason, schedule.finished_at) == (T0 + MINUTE, "", None)


# Finished: visible, with why and when.

def test_a_one_shot_that_fired_is_finished(agent):
    schedule = schedule_save(Schedule(agent=agent, name="once", kind="once", run_at=T0 + MINUTE), now=T0)
    schedules_fire_due(now=T0 + 2 * MINUTE, batch=10)
    schedule = fresh(schedule)
    assert schedule.next_fire_at is None
    assert (schedule.finished_reason, schedule.finished_at) == (FinishedReason.RUN_AT_PASSED, T0 + 2 * MINUTE)
    assert list(Schedule.objects.finished()) == [schedule]


def test_a_schedule_that_reaches_max_runs_is_finished(agent):
    schedule = schedule_save(Schedule(agent=agent, name="twice", kind="interval", interval_seconds=60,
                                      start_at=T0, max_runs=2), now=T0)
    schedules_fire_due(now=T0, batch=10)
    assert fresh(schedule).finished_reason == ""
    schedules_fire_due(now=T0 + MINUTE, batch=10)
    schedule = fresh(schedule)
    assert (schedule.run_count, schedule.finished_reason, schedule.finished_at) == (
        2, FinishedReason.MAX_RUNS, T0 + MINUTE)


def test_a_schedule_whose_window_ends_is_finished(agent):
    schedule = schedule_save(Schedule(agent=agent, name="five", cron="*/5 * * * *",
                                      end_at=T0 + timedelta(minutes=7)), now=T0)
    report = schedules_fire_due(now=T0 + 5 * MINUTE, batch=10)
    schedule = fresh(schedule)
    assert report.runs == 1 and schedule.next_fire_at is None
    assert (schedule.finished_reason, schedule.finished_at) == (FinishedReason.WINDOW_ENDED, T0 + 5 * MINUTE)


def after_completion(agent) -> Schedule:
    return schedule_save(Schedule(agent=agent, name="chain", kind="interval", interval_seconds=600,
                                  interval_mode="after_completion", start_at=T0,
                                  end_at=T0 + timedelta(minutes=15)), now=T0)


def test_an_after_completion_run_in_flight_is_not_finished(agent):
    schedule = after_completion(agent)
    schedules_fire_due(now=T0, batch=10)
    in_flight = fresh(schedule)
    assert in_flight.next_fire_at is None and in_flight.finished_reason == ""  # waiting, not finished
    assert not Schedule.objects.finished().exists()
    schedule_after_run(schedule.pk, finished_at=T0 + 2 * MINUTE)  # next tick 09:12:30, inside the window
    planned = fresh(schedule)
    assert (planned.next_tick_at, planned.finished_reason) == (T0 + 12 * MINUTE, "")


def test_an_after_completion_run_that_ends_too_late_for_another_tick_finishes_it(agent):
    schedule = after_completion(agent)
    schedules_fire_due(now=T0, batch=10)
    schedule_after_run(schedule.pk, finished_at=T0 + 6 * MINUTE)  # the next tick would fall after end_at
    done = fresh(schedule)
    assert (done.next_fire_at, done.finished_reason, done.finished_at) == (
        None, FinishedReason.WINDOW_ENDED, T0 + 6 * MINUTE)
    schedule_after_run(schedule.pk, finished_at=T0 + 7 * MINUTE)  # a late outcome changes nothing
    assert fresh(schedule).finished_at == T0 + 6 * MINUTE
    assert Run.objects.filter(schedule=schedule).count() == 1


def test_a_resume_after_the_window_closed_finishes_the_schedule(agent):
    schedule = schedule_save(Schedule(agent=agent, name="five", cron="*/5 * * * *",
                                      end_at=T0 + timedelta(hours=1)), now=T0)
    schedule_pause(schedule, reason="maintenance", now=T0)
    schedule_resume(schedule, now=T0 + timedelta(hours=2))
    schedule = fresh(schedule)
    assert (schedule.paused, schedule.next_fire_at) == (False, None)
    assert (schedule.finished_reason, schedule.finished_at) == (FinishedReason.WINDOW_ENDED, T0 + timedelta(hours=2))


# Edits of a finished schedule: only what decides firing is judged.

def test_a_fired_one_shot_resaved_for_an_unrelated_edit_is_accepted_and_stays_finished(agent):
    schedule = schedule_save(Schedule(agent=agent, name="once", kind="once", run_at=T0 + MINUTE), now=T0)
    schedules_fire_due(now=T0 + MINUTE, batch=10)
    later = T0 + timedelta(days=3)
    edited = fresh(schedule)
    edited.input_template = "Report for {{date}}"
    edited.timeout_seconds = 60
    schedule_save(edited, now=later)
    edited = fresh(schedule)
    assert (edited.version, edited.input_template) == (2, "Report for {{date}}")
    assert (edited.finished_reason, edited.finished_at) == (FinishedReason.RUN_AT_PASSED, T0 + MINUTE)


def test_moving_a_fired_one_shot_to_another_past_instant_is_refused(agent):
    schedule = schedule_save(Schedule(agent=agent, name="once", kind="once", run_at=T0 + MINUTE), now=T0)
    schedules_fire_due(now=T0 + MINUTE, batch=10)
    edited = fresh(schedule)
    edited.run_at = T0 + 30 * MINUTE
    assert "in the past" in refused(edited, now=T0 + timedelta(hours=1))["run_at"][0]


def test_moving_a_finished_one_shot_to_the_future_fires_it_again(agent):
    schedule = schedule_save(Schedule(agent=agent, name="once", kind="once", run_at=T0 + MINUTE), now=T0)
    schedules_fire_due(now=T0 + MINUTE, batch=10)
    edited = fresh(schedule)
    edited.run_at = T0 + timedelta(hours=2)
    schedule_save(edited, now=T0 + timedelta(hours=1))
    edited = fresh(schedule)
    assert (edited.next_fire_at, edited.finished_reason, edited.finished_at) == (T0 + timedelta(hours=2), "", None)


def test_raising_max_runs_of_a_finished_schedule_lets_it_fire_again(agent):
    schedule = schedule_save(Schedule(agent=agent, name="once-a-minute", kind="interval", interval_seconds=60,
                                      start_at=T0, max_runs=1), now=T0)
    schedules_fire_due(now=T0, batch=10)
    edited = fresh(schedule)
    assert edited.finished_reason == FinishedReason.MAX_RUNS
    edited.max_runs = 2
    schedule_save(edited, now=T0 + timedelta(seconds=30))
    edited = fresh(schedule)
    assert (edited.finished_reason, edited.next_tick_at) == ("", T0 + MINUTE)


def test_lowering_max_runs_of_a_live_schedule_to_its_runs_so_far_is_refused(agent):
    schedule = schedule_save(Schedule(agent=agent, name="minutely", kind="interval", interval_seconds=60,
                                      start_at=T0, max_runs=10), now=T0)
    schedules_fire_due(now=T0 + 2 * MINUTE, batch=10)
    edited = fresh(schedule)
    edited.max_runs = edited.run_count
    assert "already reached" in refused(edited, now=T0 + 2 * MINUTE)["max_runs"][0]


def test_a_due_one_shot_not_fired_yet_stays_editable(agent):
    """The beat is late: run_at has passed, the tick has not fired, and an edit keeps it due."""
    schedule = schedule_save(Schedule(agent=agent, name="once", kind="once", run_at=T0 + MINUTE), now=T0)
    edited = fresh(schedule)
    edited.run_at = T0 + 2 * MINUTE
    schedule_save(edited, now=T0 + 5 * MINUTE)
    assert fresh(schedule).next_fire_at == T0 + 2 * MINUTE

"""One beat loop, as a service: due ticks become ledger rows under the missed-run policy."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runs.models import Run, RunState, SkipReason, Trigger
from schedules.models import Agent, Schedule
from schedules.services import schedule_save
from triggers.firing import schedules_fire_due

T0 = datetime(2026, 11, 22, 9, 0, 30, tzinfo=UTC)


@pytest.fixture
def agent(db):
    return Agent.objects.create(name="reporter")


def every_five(agent, **fields) -> Schedule:
    return schedule_save(Schedule(agent=agent, name="five", cron="*/5 * * * *", **fields), now=T0)


def rows(schedule):
    return list(Run.objects.filter(schedule=schedule).order_by("tick_at")
                .values_list("tick_at", "trigger", "state", "skip_reason", "missed_count"))


def at(hour, minute):
    return datetime(2026, 11, 22, hour, minute, tzinfo=UTC)


def test_nothing_is_due_before_the_first_tick(agent):
    schedule = every_five(agent)
    assert schedule.next_fire_at == at(9, 5)
    report = schedules_fire_due(now=at(9, 4), batch=10)
    assert (report.schedules, report.runs, report.next_due) == (0, 0, at(9, 5))


def test_a_due_tick_becomes_one_run_and_next_fire_advances(agent, django_capture_on_commit_callbacks):
    schedule = every_five(agent)
    with django_capture_on_commit_callbacks() as published:
        report = schedules_fire_due(now=at(9, 5) + timedelta(seconds=2), batch=10)
    assert report.runs == 1 and len(published) == 1
    assert rows(schedule) == [(at(9, 5), Trigger.SCHEDULE, RunState.PENDING, "", 0)]
    schedule.refresh_from_db()
    assert (schedule.next_fire_at, schedule.run_count) == (at(9, 10), 1)


def test_firing_again_at_the_same_instant_adds_nothing(agent):
    schedule = every_five(agent)
    schedules_fire_due(now=at(9, 6), batch=10)
    Schedule.objects.filter(pk=schedule.pk).update(next_fire_at=at(9, 5), next_tick_at=at(9, 5))
    assert schedules_fire_due(now=at(9, 6), batch=10).runs == 0
    assert len(rows(schedule)) == 1


def test_missed_ticks_are_skipped_with_a_reason_and_the_latest_runs(agent):
    schedule = every_five(agent)  # grace 60s
    schedules_fire_due(now=at(9, 20) + timedelta(seconds=30), batch=10)
    assert rows(schedule) == [
        (at(9, 5), Trigger.SCHEDULE, RunState.SKIPPED, SkipReason.MISSED, 1),
        (at(9, 10), Trigger.SCHEDULE, RunState.SKIPPED, SkipReason.MISSED, 1),
        (at(9, 15), Trigger.SCHEDULE, RunState.SKIPPED, SkipReason.MISSED, 1),
        (at(9, 20), Trigger.SCHEDULE, RunState.PENDING, "", 0),
    ]


def test_coalesce_runs_once_for_the_latest_missed_tick(agent):
    schedule = every_five(agent, missed_policy="coalesce", missed_grace_seconds=10)
    schedules_fire_due(now=at(9, 16), batch=10)
    states = rows(schedule)
    assert states[-1] == (at(9, 15), Trigger.CATCHUP, RunState.PENDING, "", 3)
    assert [s[2] for s in states[:-1]] == [RunState.SKIPPED, RunState.SKIPPED]


def test_replay_runs_each_missed_tick_in_order(agent):
    schedule = every_five(agent, missed_policy="replay", missed_grace_seconds=10)
    schedules_fire_due(now=at(9, 16), batch=10)
    assert [(r[0], r[1], r[2]) for r in rows(schedule)] == [
        (at(9, 5), Trigger.CATCHUP, RunState.PENDING),
        (at(9, 10), Trigger.CATCHUP, RunState.PENDING),
        (at(9, 15), Trigger.CATCHUP, RunState.PENDING),
    ]


def test_a_long_outage_is_one_counted_summary_row(agent):
    schedule = every_five(agent)
    schedules_fire_due(now=at(12, 0) + timedelta(seconds=30), batch=10)
    skipped = Run.objects.get(schedule=schedule, state=RunState.SKIPPED)
    assert skipped.missed_count == 35  # 09:05 .. 11:55 missed; 12:00 is within grace
    assert (skipped.period_start, skipped.period_end) == (at(9, 5), at(11, 55))
    assert Run.objects.get(schedule=schedule, state=RunState.PENDING).tick_at == at(12, 0)


def test_paused_schedules_are_not_due(agent):
    schedule = every_five(agent, paused=True)
    assert schedules_fire_due(now=at(10, 0), batch=10).runs == 0
    assert rows(schedule) == []


@pytest.mark.parametrize("policy, skipped, catchup", [
    # An hour down, every five minutes: 09:05..10:00 missed (12), 10:05 on time.
    ("skip", 12, 0),
    ("coalesce", 11, 1),
    ("replay", 0, 12),
])
def test_an_hour_of_downtime_under_each_policy(agent, policy, skipped, catchup):
    schedule = every_five(agent, missed_policy=policy, missed_grace_seconds=60)
    schedules_fire_due(now=at(10, 5) + timedelta(seconds=10), batch=10)
    found = Run.objects.filter(schedule=schedule)
    skipped_ticks = sum(found.filter(state=RunState.SKIPPED).values_list("missed_count", flat=True))
    assert skipped_ticks == skipped
    assert found.filter(trigger=Trigger.CATCHUP, state=RunState.PENDING).count() == catchup
    assert list(found.filter(trigger=Trigger.SCHEDULE, state=RunState.PENDING)
                .values_list("tick_at", flat=True)) == [at(10, 5)]
    # Every tick of the hour is accounted for: in its own row or in a counted summary.
    assert skipped + catchup + 1 == 13


def test_after_completion_interval_waits_for_the_run_to_finish(agent):
    from django.utils import timezone as dj_timezone

    from runs.services.execute import run_execute

    start = dj_timezone.now()
    schedule = schedule_save(Schedule(agent=agent, name="chain", kind="interval", interval_seconds=600,
                                      interval_mode="after_completion"), now=start)
    first = schedule.next_fire_at
    schedules_fire_due(now=first, batch=10)
    schedule.refresh_from_db()
    assert schedule.next_fire_at is None  # in flight: nothing planned yet
    run = Run.objects.get(schedule=schedule)
    assert run_execute(run.id, owner="w", now=first) == RunState.SUCCEEDED
    run.refresh_from_db()
    schedule.refresh_from_db()
    assert schedule.next_tick_at == run.finished_at + timedelta(seconds=600)


def test_the_claim_takes_what_the_due_selector_names_earliest_first(agent):
    from django.db import transaction

    from triggers.firing import schedules_claim_due

    made = [schedule_save(Schedule(agent=agent, name=f"s{minute}", cron=f"{minute} * * * *"), now=T0)
            for minute in (7, 3, 20, 5, 11)]
    Schedule.objects.filter(name="s5").update(paused=True)
    Schedule.objects.filter(name="s11").update(deleted_at=T0)
    now = at(9, 15)
    expected = list(Schedule.objects.due(now=now).order_by("next_fire_at").values_list("name", flat=True)[:2])
    with transaction.atomic():
        claimed = schedules_claim_due(now=now, batch=2)
    assert expected == ["s3", "s7"] and [s.name for s in claimed] == expected
    reference = Schedule.objects.get(name="s3")
    for field in Schedule._meta.concrete_fields:  # every column, as the ORM reads it
        assert getattr(claimed[0], field.attname) == getattr(reference, field.attname), field.name
    assert len(made) == 5


def test_an_after_completion_interval_fires_the_tick_its_last_run_planned(agent):
    """The planned tick (finish + interval) is not on the anchor's projection: it must still fire."""
    from schedules.services import schedule_after_run

    schedule = schedule_save(Schedule(agent=agent, name="settle", kind="interval", interval_seconds=600,
                                      interval_mode="after_completion", start_at=at(9, 0)), now=T0)
    assert schedules_fire_due(now=at(9, 10), batch=10).runs == 1
    schedule_after_run(schedule.pk, finished_at=at(9, 12))  # the run took two minutes
    schedule.refresh_from_db()
    assert schedule.next_tick_at == at(9, 22)
    assert schedules_fire_due(now=at(9, 22) + timedelta(seconds=1), batch=10).runs == 1
    assert [tick for tick, *_ in rows(schedule)] == [at(9, 10), at(9, 22)]
    schedule.refresh_from_db()
    assert schedule.next_fire_at is None  # waiting for the second run to end


def test_a_schedule_that_cannot_be_planned_is_paused_and_the_batch_goes_on(agent):
    """A row saved before a rule tightened (here a zone name now refused) never stops the others."""
    good = every_five(agent)
    broken = schedule_save(
        Schedule(agent=agent, name="legacy", cron="*/5 * * * *"), now=T0)
    Schedule.objects.filter(pk=broken.pk).update(timezone="EST")
    report = schedules_fire_due(now=at(9, 5) + timedelta(seconds=1), batch=10)
    assert report.runs == 1 and rows(good)[0][0] == at(9, 5)
    broken.refresh_from_db()
    assert broken.paused and "cannot be planned" in broken.paused_reason and not rows(broken)

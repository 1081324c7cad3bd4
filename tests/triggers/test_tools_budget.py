"""The beat's side of wakeups: a wakeup's tick continues its origin's chain, within the chain's budget.

Service tests: the beat loop (``schedules_fire_due``) over schedules built
here, with the clock passed in.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from runs.models import Run, RunState, SkipReason, Trigger
from schedules.models import Agent, CreatorKind, Schedule
from schedules.services import schedule_save
from triggers.firing import schedules_fire_due
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db(transaction=True)


def wakeup(agent: Agent, origin: Run, *, wakeups: int, chain_started_ago: timedelta = timedelta(0)) -> Schedule:
    now = timezone.now()
    return schedule_save(Schedule(
        agent=agent, name=f"wakeup-{wakeups}-{chain_started_ago.total_seconds():.0f}", kind="once",
        run_at=now + timedelta(milliseconds=1), session_mode="persistent", session_id="s-1", payload_type="message",
        input_template="look again", creator_kind=CreatorKind.AGENT_RUN, origin_run_id=origin.pk,
        origin_agent=agent, origin_chain_id="chain-1", origin_wakeup_count=wakeups,
        origin_chain_started_at=now - chain_started_ago), now=now)


@pytest.fixture
def agent(transactional_db) -> Agent:
    space = Workspace.objects.create(slug="acme", name="Acme", chain_max_wakeups=5, chain_max_age_seconds=3600)
    return Agent.objects.create(name="scout", workspace=space)


@pytest.fixture
def origin(agent) -> Run:
    return Run.objects.create(agent=agent, trigger=Trigger.MANUAL, tick_at=timezone.now(), idempotency_key="o",
                              session_id="s-1", chain_id="chain-1", state=RunState.SUCCEEDED)


def fire() -> None:
    schedules_fire_due(now=timezone.now() + timedelta(seconds=1), batch=10)


def test_a_wakeup_continues_the_chain_one_wakeup_further(agent, origin):
    schedule = wakeup(agent, origin, wakeups=4)
    fire()
    run = Run.objects.get(schedule=schedule)
    assert (run.trigger, run.state, run.chain_id, run.parent_run_id, run.wakeup_count, run.actor_id) == (
        Trigger.WAKEUP, RunState.PENDING, "chain-1", origin.pk, 5, agent.pk)
    assert (run.session_id, run.payload_type) == ("s-1", "message")


def test_a_wakeup_beyond_the_chain_count_is_recorded_skipped(agent, origin):
    schedule = wakeup(agent, origin, wakeups=5)
    fire()
    run = Run.objects.get(schedule=schedule)
    assert (run.trigger, run.state, run.skip_reason, run.wakeup_count) == (
        Trigger.WAKEUP, RunState.SKIPPED, SkipReason.CHAIN_BUDGET, 6)


def test_a_wakeup_beyond_the_chain_age_is_recorded_skipped(agent, origin):
    inside = wakeup(agent, origin, wakeups=0, chain_started_ago=timedelta(seconds=3500))
    beyond = wakeup(agent, origin, wakeups=0, chain_started_ago=timedelta(seconds=3601))
    fire()
    assert Run.objects.get(schedule=inside).state == RunState.PENDING
    assert Run.objects.get(schedule=beyond).skip_reason == SkipReason.CHAIN_BUDGET


def test_a_person_one_shot_is_a_plain_scheduled_tick(agent):
    schedule = schedule_save(Schedule(agent=agent, name="once", kind="once",
                                      run_at=timezone.now() + timedelta(milliseconds=1)), now=timezone.now())
    fire()
    run = Run.objects.get(schedule=schedule)
    assert (run.trigger, run.wakeup_count, run.parent_run_id) == (Trigger.SCHEDULE, 0, None)


def test_a_wakeup_whose_origin_run_was_purged_still_fires_in_its_chain(agent, origin):
    schedule = wakeup(agent, origin, wakeups=1)
    Run.objects.filter(pk=origin.pk).delete()  # the ledger's retention, before the wakeup fired
    fire()
    run = Run.objects.get(schedule=schedule)
    assert (run.state, run.chain_id, run.parent_run_id, run.wakeup_count) == (RunState.PENDING, "chain-1", None, 2)

"""People and API keys may not make a recurring schedule tick more often than the workspace allows (60 s)."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from schedules.models import Agent, Schedule
from schedules.services import schedule_save, schedule_validate
from workspaces.audit import Actor
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db

PERSON = Actor(source="admin")
API = Actor(source="api")


@pytest.fixture
def agent() -> Agent:
    return Agent.objects.create(name="scout")


def interval(agent: Agent, seconds: int, name: str = "poll") -> Schedule:
    return Schedule(agent=agent, name=name, kind="interval", cron="", interval_seconds=seconds)


@pytest.mark.parametrize("actor", [PERSON, API])
def test_an_interval_under_the_limit_is_refused_naming_the_field_and_the_setting(agent, actor):
    with pytest.raises(ValidationError) as refused:
        schedule_save(interval(agent, 59), now=timezone.now(), actor=actor)
    message = " ".join(refused.value.message_dict["interval_seconds"])
    assert "every 59s" in message and "every 60s at most" in message and "min_interval_seconds" in message
    assert not Schedule.objects.exists()


@pytest.mark.parametrize("actor", [PERSON, API])
def test_the_limit_itself_and_a_minutely_cron_are_allowed(agent, actor):
    schedule_save(interval(agent, 60), now=timezone.now(), actor=actor)
    schedule_save(Schedule(agent=agent, name="minutely", cron="* * * * *"), now=timezone.now(), actor=actor)
    assert Schedule.objects.count() == 2


def test_a_cron_faster_than_the_limit_is_refused_on_the_cron_field(agent):
    # Cron cannot tick faster than a minute: raise the limit to see a cron refused.
    Workspace.objects.update(min_interval_seconds=120)
    with pytest.raises(ValidationError) as refused:
        schedule_save(Schedule(agent=agent, name="minutely", cron="* * * * *"), now=timezone.now(), actor=PERSON)
    assert "cron" in refused.value.message_dict


def test_the_workspace_setting_moves_the_limit(agent):
    Workspace.objects.update(min_interval_seconds=5)
    schedule_save(interval(agent, 5), now=timezone.now(), actor=API)
    with pytest.raises(ValidationError):
        schedule_save(interval(agent, 4, name="faster"), now=timezone.now(), actor=API)


def test_an_edit_that_keeps_the_cadence_is_not_refused_later(agent):
    schedule = schedule_save(interval(agent, 30), now=timezone.now(), actor=Actor.system())  # made by the system
    schedule.failure_limit = 2
    schedule_save(schedule, now=timezone.now(), actor=PERSON)  # a person's edit of another field
    schedule.interval_seconds = 20
    with pytest.raises(ValidationError):
        schedule_save(schedule, now=timezone.now(), actor=PERSON)


def test_the_form_check_asks_the_same_question(agent):
    with pytest.raises(ValidationError) as refused:
        schedule_validate(interval(agent, 10), now=timezone.now(), actor=PERSON)
    assert "interval_seconds" in refused.value.message_dict
    schedule_validate(interval(agent, 10), now=timezone.now())  # no actor: the system's own hand

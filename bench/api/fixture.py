"""What the benchmark reads and triggers: one workspace, its admin's API key, one agent and its schedules."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fixture:
    token: str
    agent_id: int
    schedule_ids: tuple[int, ...]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def fixture_create(*, schedules: int) -> Fixture:
    """A member (role admin) with a key, an ``echo`` agent and ``schedules`` daily crons it created."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from schedules.agents import agent_save
    from schedules.models import Agent, Schedule
    from schedules.services import schedule_save
    from workspaces.keys import api_key_create
    from workspaces.models import Membership, Role, Workspace

    now = timezone.now()
    user = get_user_model().objects.create_user("bench-api")
    space = Workspace.objects.create(slug="bench-api", name="Bench API")
    Membership.objects.create(workspace=space, user=user, role=Role.ADMIN)
    issued = api_key_create(workspace=space, user=user, name="bench")
    agent = agent_save(Agent(workspace=space, name="scout"), now=now)
    ids = []
    for i in range(schedules):
        schedule = Schedule(agent=agent, name=f"daily-{i:04}", kind="cron", cron=f"{i % 60} {i % 24} * * *",
                            timezone="Europe/Berlin", created_by=user)
        ids.append(schedule_save(schedule, now=now).pk)
    return Fixture(token=issued.token, agent_id=agent.pk, schedule_ids=tuple(ids))

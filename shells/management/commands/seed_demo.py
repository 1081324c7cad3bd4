"""Create the demo login, agent and every-minute schedule (idempotent)."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from schedules import services
from schedules.models import Agent, Schedule
from workspaces.models import Membership, Role, Workspace, default_workspace

DEMO_USER = "admin"
DEMO_PASSWORD = "tickwise"


class Command(BaseCommand):
    help = "Seed a demo admin login, an echo agent and a schedule that fires every minute."

    def handle(self, *args, **options):
        user = self._user()
        workspace = Workspace.objects.get(pk=default_workspace())
        # The demo login administers the default workspace: it can issue itself an API key.
        Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": Role.ADMIN})
        agent, _ = Agent.objects.get_or_create(workspace=workspace, name="demo-echo", deleted_at=None,
                                               defaults={"adapter": "echo"})
        if not Schedule.objects.live().filter(agent=agent, name="every-minute").exists():
            schedule = Schedule(agent=agent, name="every-minute", cron="* * * * *", created_by=user,
                                input_template="Demo tick {{run_number}} at {{tick_at}} ({{day_of_week}})")
            services.schedule_save(schedule, now=timezone.now())
        self.stdout.write(f"demo login: {DEMO_USER} / {DEMO_PASSWORD}")

    def _user(self):
        User = get_user_model()
        user = User.objects.filter(username=DEMO_USER).first()
        if user is None:
            user = User.objects.create_superuser(DEMO_USER, "admin@example.com", DEMO_PASSWORD)
        return user

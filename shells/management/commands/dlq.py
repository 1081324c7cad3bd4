"""Inspect and replay the dead-letter queue."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from runs.services.dlq import ReplayRefused, dead_letters, run_replay, schedule_replay_dead
from workspaces.audit import Actor

from ._arguments import one_line, schedule_named, shown, whole_number

MAX_ID = 2**63 - 1  # a bigint primary key


class Command(BaseCommand):
    help = "dlq list | dlq replay RUN_ID | dlq replay --schedule AGENT/SCHEDULE"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "replay"])
        parser.add_argument("run_id", nargs="?", help="the run to replay (its id)")
        parser.add_argument("--schedule", help="replay every dead-lettered run of AGENT/SCHEDULE (or an id)")

    def handle(self, *args: Any, action: str, run_id: object, schedule: str | None, **options: Any) -> None:
        if action == "list":
            if run_id is not None or schedule is not None:
                raise CommandError("list takes no RUN_ID or --schedule")
            return self._list()
        if run_id is not None and schedule is not None:
            raise CommandError("replay takes RUN_ID or --schedule, not both")
        now = timezone.now()
        if schedule is not None:
            found = schedule_named(schedule)
            replayed = schedule_replay_dead(found.pk, now=now)
            self.stdout.write(f"replayed {len(replayed)} run(s) of {found}")
            return
        if run_id is None:
            raise CommandError("replay needs RUN_ID or --schedule")
        try:
            run = run_replay(whole_number("RUN_ID", run_id, low=1, high=MAX_ID), now=now,
                             actor=Actor(source="command"))
        except ReplayRefused as error:
            raise one_line(str(error)) from None
        self.stdout.write(f"run {run.pk} replayed: {run.state}, key {run.idempotency_key}")

    def _list(self) -> None:
        for run in dead_letters().order_by("-finished_at")[:500]:
            self.stdout.write(f"{run.pk}\t{run.state}\t{run.schedule}\t{run.tick_at:%Y-%m-%dT%H:%M:%SZ}\t"
                              f"attempt {run.attempt}\t{run.error_category}: {shown(run.error_message, limit=80)}")

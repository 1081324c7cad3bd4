"""Inspect and replay the dead-letter queue."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from runs.services.dlq import ReplayRefused, dead_letters, run_replay, schedule_replay_dead
from schedules.selectors import schedule_lookup


class Command(BaseCommand):
    help = "dlq list | dlq replay RUN_ID | dlq replay --schedule AGENT/SCHEDULE"

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "replay"])
        parser.add_argument("run_id", nargs="?", type=int)
        parser.add_argument("--schedule", help="replay every dead-lettered run of AGENT/SCHEDULE (or an id)")

    def handle(self, *args, action, run_id, schedule, **options):
        if action == "list":
            return self._list()
        now = timezone.now()
        if schedule:
            found = schedule_lookup(schedule)
            if found is None:
                raise CommandError(f"no schedule {schedule!r}")
            replayed = schedule_replay_dead(found.pk, now=now)
            self.stdout.write(f"replayed {len(replayed)} run(s) of {found}")
            return
        if run_id is None:
            raise CommandError("replay needs RUN_ID or --schedule")
        try:
            run = run_replay(run_id, now=now)
        except ReplayRefused as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"run {run.pk} replayed: {run.state}, key {run.idempotency_key}")

    def _list(self):
        for run in dead_letters().order_by("-finished_at")[:500]:
            self.stdout.write(f"{run.pk}\t{run.state}\t{run.schedule}\t{run.tick_at:%Y-%m-%dT%H:%M:%SZ}\t"
                              f"attempt {run.attempt}\t{run.error_category}: {run.error_message[:80]}")

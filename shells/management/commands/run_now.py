"""Start a run of a schedule now, through the same dispatch path as beat."""
from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from runs.models import TERMINAL_STATES, Run, RunState
from runs.services.manual import run_now
from schedules.selectors import schedule_lookup


class Command(BaseCommand):
    help = "Start a run of AGENT/SCHEDULE (or a schedule id) now; works on paused schedules too."

    def add_arguments(self, parser):
        parser.add_argument("schedule", help="AGENT/SCHEDULE or a schedule id")
        parser.add_argument("--wait", action="store_true", help="follow the run to its end")
        parser.add_argument("--timeout", type=float, default=600, help="seconds --wait waits at most")
        parser.add_argument("--json", action="store_true", help="print the run as JSON")

    def handle(self, *args, **options):
        schedule = schedule_lookup(options["schedule"])
        if schedule is None:
            raise CommandError(f"no schedule {options['schedule']!r} (use AGENT/SCHEDULE or an id)")
        run = run_now(schedule, now=timezone.now())
        if options["wait"]:
            run = self._wait(run, options["timeout"])
        self._print(run, options["json"])
        if run.state in (RunState.FAILED, RunState.DEAD, RunState.CANCELLED, RunState.UNKNOWN):
            raise CommandError(f"run {run.pk} ended {run.state}: {run.error_message}")

    def _wait(self, run: Run, timeout: float) -> Run:
        deadline = time.monotonic() + timeout
        while run.state not in TERMINAL_STATES:
            if time.monotonic() > deadline:
                raise CommandError(f"run {run.pk} still {run.state} after {timeout:.0f}s")
            time.sleep(0.2)
            run.refresh_from_db()
        return run

    def _print(self, run: Run, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps({
                "id": run.pk, "state": run.state, "trigger": run.trigger,
                "tick_at": run.tick_at.isoformat(), "idempotency_key": run.idempotency_key,
                "output": run.output, "error": run.error_message or None,
            }))
        else:
            self.stdout.write(f"run {run.pk} {run.state} ({run.trigger}, key {run.idempotency_key})")

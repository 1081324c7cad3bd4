"""Start a run of a schedule now, through the same dispatch path as beat."""
from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from runs.models import TERMINAL_STATES, Run, RunState
from runs.services.manual import RunRefused, run_now
from workspaces.audit import Actor

from ._arguments import one_line, schedule_named, seconds

MAX_WAIT = 86_400.0  # a day: longer waits belong to a job runner, not a terminal


class Command(BaseCommand):
    help = "Start a run of AGENT/SCHEDULE (or a schedule id) now; works on paused schedules too."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("schedule", help="AGENT/SCHEDULE or a schedule id")
        parser.add_argument("--wait", action="store_true", help="follow the run to its end")
        parser.add_argument("--timeout", default=600,
                            help=f"seconds --wait waits at most, above 0 and at most {MAX_WAIT:g} (default 600)")
        parser.add_argument("--json", action="store_true", help="print the run as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        # Every argument is checked before anything starts: a bad --timeout never leaves a run behind.
        timeout = seconds("--timeout", options["timeout"], high=MAX_WAIT)
        schedule = schedule_named(options["schedule"])
        try:
            run = run_now(schedule, now=timezone.now(), actor=Actor(source="command"))
        except RunRefused as refused:
            raise one_line(str(refused)) from None
        if options["wait"]:
            run = self._wait(run, timeout)
        self._print(run, options["json"])
        if run.state in (RunState.FAILED, RunState.DEAD, RunState.CANCELLED, RunState.UNKNOWN):
            raise one_line(f"run {run.pk} ended {run.state}: {run.error_message}")

    def _wait(self, run: Run, timeout: float) -> Run:
        deadline = time.monotonic() + timeout
        while run.state not in TERMINAL_STATES:
            if time.monotonic() > deadline:
                raise CommandError(f"run {run.pk} still {run.state} after {timeout:g}s")
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

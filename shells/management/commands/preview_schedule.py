"""Preview a schedule's next ticks with their DST notes: the fire-time contract, checkable from outside.

    manage.py preview_schedule --cron "30 2 * * *" --tz America/New_York --after 2026-03-07T00:00:00Z --count 5
    manage.py preview_schedule demo-echo/every-minute --count 5 --json
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, TypedDict

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone as django_timezone

from core import timing
from schedules.models import Schedule

from ._arguments import instant, one_line, schedule_named, whole_number

FAR_FUTURE = datetime.max.replace(tzinfo=UTC)
CRON_ONLY = ("tz", "dst_gap", "dst_fold")


class TickRow(TypedDict):
    at: str
    local: str
    note: str | None
    fire_at: str
    runs: bool


class Command(BaseCommand):
    help = ("Show the next ticks of a cron expression (--cron, --tz, --dst-gap, --dst-fold) or of a "
            "stored schedule (its id or AGENT/NAME), in UTC and local time, with DST notes.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("schedule", nargs="?", help="a stored schedule: its id, or AGENT/NAME")
        parser.add_argument("--cron", help='a cron expression, e.g. "30 2 * * *"')
        parser.add_argument("--tz", help="IANA zone the expression is read in (default UTC)")
        parser.add_argument("--dst-gap", help="skip (default) or shift")
        parser.add_argument("--dst-fold", help="first (default), last or both")
        parser.add_argument("--after", help="ISO 8601 instant with an offset or Z (default: now)")
        parser.add_argument("--count", default="10", help=f"how many ticks, 1-{timing.MAX_TICKS} (default 10)")
        parser.add_argument("--json", action="store_true", help="print one JSON array")

    def handle(self, *args: Any, **options: Any) -> None:
        title, plan, runs_so_far = self._plan(options)
        count = whole_number("--count", options["count"], low=1, high=timing.MAX_TICKS)
        after = django_timezone.now() if options["after"] is None else instant("--after", options["after"])
        ticks = timing.ticks_between(plan, after=after, until=FAR_FUTURE, limit=count, runs_so_far=runs_so_far)
        rows = [_row(tick) for tick in ticks]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
        else:
            self.stdout.write(_table(f"{title}, after {_utc(after)}", rows))

    def _plan(self, options: dict[str, Any]) -> tuple[str, timing.Plan, int]:
        if options["schedule"] and options["cron"]:
            raise CommandError("give a stored schedule or --cron, not both")
        if options["schedule"]:
            given = [f"--{name.replace('_', '-')}" for name in CRON_ONLY if options[name] is not None]
            if given:
                raise CommandError(f"{', '.join(given)}: only with --cron; a stored schedule has its own "
                                   f"zone and DST policies")
            return _stored(options["schedule"])
        if options["cron"] is None:
            raise CommandError("give a stored schedule (ID or AGENT/NAME) or --cron EXPRESSION")
        return _adhoc(options["cron"], _given(options["tz"], "UTC"),
                      _given(options["dst_gap"], "skip"), _given(options["dst_fold"], "first"))


def _adhoc(expr: str, tz: str, gap: str, fold: str) -> tuple[str, timing.Plan, int]:
    try:
        spec = timing.CronSpec(expr, tz, gap, fold)
    except ValueError as error:  # a TimingError, or int()'s own limit on a 5000-digit cron field
        raise one_line(str(error)) from None
    return f"{expr!r} in {tz} (dst_gap={gap}, dst_fold={fold})", timing.Plan(spec), 0


def _stored(ref: str) -> tuple[str, timing.Plan, int]:
    schedule = schedule_named(ref)
    try:
        plan = schedule.plan()
    except (timing.TimingError, TypeError) as error:
        raise one_line(f"schedule {schedule} (#{schedule.pk}) cannot be planned: {error}") from None
    return f"{schedule} (#{schedule.pk}): {_describe(schedule)}", plan, schedule.run_count


def _given(value: str | None, default: str) -> str:
    # An empty --tz "" is bad input (the engine says so), not a request for the default.
    return default if value is None else value


def _describe(schedule: Schedule) -> str:
    if schedule.kind == "cron":
        return (f"{schedule.cron!r} in {schedule.timezone} "
                f"(dst_gap={schedule.dst_gap}, dst_fold={schedule.dst_fold})")
    if schedule.kind == "interval":
        return f"every {schedule.interval} ({schedule.interval_mode})"
    return "one-shot"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(tick: timing.Tick) -> TickRow:
    return TickRow(at=_utc(tick.at), local=tick.local.isoformat(timespec="seconds"),
                   note=tick.note, fire_at=_utc(tick.fire_at), runs=tick.runs)


def _table(title: str, rows: list[TickRow]) -> str:
    if not rows:
        return f"{title}\nno ticks"
    lines = [title, f"{'tick_at (UTC)':<22}{'local':<27}{'fires at (UTC)':<22}note"]
    for row in rows:
        fires = row["fire_at"] if row["runs"] else "not run"
        lines.append(f"{row['at']:<22}{row['local']:<27}{fires:<22}{row['note'] or ''}".rstrip())
    return "\n".join(lines)

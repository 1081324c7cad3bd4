"""A schedule's cadence and instants in words a person reads at a glance.

Cron in words comes from ``cron-descriptor`` ("At 09:00, Monday through
Friday"), in 24-hour time because the schedule's zone is printed beside it;
intervals and one-shots are worded here. Every instant shown carries its
zone, and UTC beside it (docs/admin.md).
"""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from cron_descriptor import ExpressionDescriptor, Options  # type: ignore[import-untyped]  # no stubs
from django.utils.html import format_html
from django.utils.safestring import SafeString

from core import timing
from core.timing.cron import MACROS
from schedules.models import IntervalMode, Schedule, ScheduleKind

UNITS = ((86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second"))
UTC_NAMES = ("UTC", "Etc/UTC")


def cron_words(expr: str) -> str:
    """``0 9 * * 1-5`` → "At 09:00, Monday through Friday"; the expression itself when it cannot be worded."""
    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    try:
        return str(ExpressionDescriptor(MACROS.get(expr.strip().lower(), expr), options).get_description())
    except Exception:  # the describer raises its own types; the words are a nicety, the engine decides
        return expr


def interval_words(seconds: int) -> str:
    """900 → "Every 15 minutes"; 5400 → "Every 90 minutes"; a whole unit is preferred, the largest first."""
    for size, unit in UNITS:
        if seconds % size == 0:
            count = seconds // size
            return f"Every {unit}" if count == 1 else f"Every {count} {unit}s"
    return f"Every {seconds} seconds"


def schedule_cadence(schedule: Schedule) -> str:
    if schedule.kind == ScheduleKind.CRON:
        return f"{cron_words(schedule.cron)} ({schedule.timezone})"
    if schedule.kind == ScheduleKind.INTERVAL:
        words = interval_words(schedule.interval_seconds or 0)
        if schedule.interval_mode == IntervalMode.AFTER_COMPLETION:
            return f"{words} after the previous run ends"
        return words
    return f"Once at {local_and_utc(schedule.run_at, schedule.timezone)}"


def zone_of(name: str) -> ZoneInfo | None:
    try:
        return timing.validate_timezone(name)
    except timing.TimingError:
        return None


def local_and_utc(moment: datetime | None, zone_name: str) -> str:
    """An instant as the schedule's wall clock with its zone, and in UTC: never a bare time."""
    if moment is None:
        return "-"
    utc = f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    zone = zone_of(zone_name)
    if zone is None or zone_name in UTC_NAMES:
        return utc
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S %Z} ({zone_name}) = {utc}"


def countdown(moment: datetime, *, now: datetime) -> SafeString:
    """A live countdown: the server's text, then ``tickwise/countdown.js`` updates it from the data attribute."""
    return format_html('<span class="tw-countdown" data-at="{}">{}</span>',
                       moment.astimezone(UTC).isoformat().replace("+00:00", "Z"), until_words(moment, now=now))


def until_words(moment: datetime, *, now: datetime) -> str:
    """"in 2d 3h 05m 09s", "in 9s", or "due now" once it has passed (the JS says the same).

    Seconds always: a countdown that visibly moves says the page is live.
    """
    seconds = int((moment - now).total_seconds())
    if seconds <= 0:
        return "due now"
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"in {days}d {hours}h {minutes:02d}m {secs:02d}s"
    if hours:
        return f"in {hours}h {minutes:02d}m {secs:02d}s"
    return f"in {minutes}m {secs:02d}s" if minutes else f"in {secs}s"

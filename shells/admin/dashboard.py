"""The admin's front page: what is due, what is failing, what waits for a person, and whether the machinery runs.

Each figure comes from one aggregate query (``runs.selectors``); the lists are
bounded. Workers are asked once, with a short timeout, through Celery's
``control.ping``: a worker that does not answer within it is not listed.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from celery import current_app
from django.apps import apps
from django.core.cache import cache
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from runs import selectors
from runs.models import RunState
from runs.pulses import PULSES
from workspaces.models import Workspace

from .runs import STATE_COLOURS, UNCOLOURED, local_time
from .scoping import visible_workspaces

PING_TIMEOUT_SECONDS = 0.5
WORKERS_CACHE_SECONDS = 10
WORKERS_CACHE_KEY = "tickwise:admin:workers-seen"
PULSE_TASKS = [task for _, task, _, _ in PULSES]


@dataclass(frozen=True)
class Pulse:
    name: str
    task: str
    enabled: bool
    last_sent_at: datetime | None
    last_status: str
    last_done_at: datetime | None
    last_result: str


def dashboard_context(request: HttpRequest) -> dict[str, Any]:
    # The ping waits out its timeout (nobody says "that was all the workers"): it runs beside the queries.
    with ThreadPoolExecutor(max_workers=1) as pool:
        workers = pool.submit(workers_seen)
        figures = _figures(request)
        return {**figures, "workers": workers.result()}


def _figures(request: HttpRequest) -> dict[str, Any]:
    now = timezone.now()
    scope = None if request.user.is_superuser else visible_workspaces(request)
    ledger = selectors.ledger_overview(now=now, workspaces=scope)
    registry = selectors.schedule_overview(now=now, workspaces=scope)
    return {
        "now_utc": f"{now:%Y-%m-%d %H:%M:%S} UTC",
        "registry": registry,
        "due_soon": [_due_row(schedule, now) for schedule in selectors.schedules_due_soon(now=now, workspaces=scope)],
        "in_trouble": list(selectors.schedules_in_trouble(workspaces=scope)),
        "ledger": ledger,
        "queues": [_queue_row(state, count) for state, count in
                   ((RunState.DEAD, ledger.dead), (RunState.UNKNOWN, ledger.unknown))],
        "states_24h": [_state_row(state, ledger.states_24h[state], ledger.since) for state in RunState.values],
        "last_fired": _utc(registry.last_fired_tick_at),
        "pulses": pulses_last_seen() if request.user.is_superuser else [],
        "alerts": open_alerts(scope),
    }


def _utc(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "never"


def _due_row(schedule: Any, now: datetime) -> dict[str, Any]:
    seconds = int((schedule.next_fire_at - now).total_seconds())
    when = f"in {_span(seconds)}" if seconds >= 0 else f"{_span(-seconds)} late"
    return {"schedule": schedule, "local": local_time(schedule.next_fire_at, schedule.timezone),
            "utc": _utc(schedule.next_fire_at), "when": when,
            "url": reverse("admin:schedules_schedule_change", args=[schedule.pk])}


def _span(seconds: int) -> str:
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def runs_url(**lookups: str) -> str:
    return f"{reverse('admin:runs_run_changelist')}?{urlencode(lookups)}"


def _queue_row(state: str, count: int) -> dict[str, Any]:
    return {**_state(state, count), "url": runs_url(state__exact=state)}


def _state_row(state: str, count: int, since: datetime) -> dict[str, Any]:
    return {**_state(state, count), "url": runs_url(state__exact=state, tick_at__gte=since.isoformat())}


def _state(state: str, count: int) -> dict[str, Any]:
    return {"state": state, "label": RunState(state).label, "count": count,
            "colour": STATE_COLOURS.get(state, UNCOLOURED)}


def pulses_last_seen() -> list[Pulse]:
    """Each housekeeping pulse: when beat last sent it, and its newest recorded outcome (two queries)."""
    tasks = PeriodicTask.objects.filter(task__in=PULSE_TASKS).order_by("name")
    # DISTINCT ON: the newest result per task, in one query.
    latest = {result.task_name: result for result in TaskResult.objects.filter(task_name__in=PULSE_TASKS)
              .order_by("task_name", "-date_done").distinct("task_name")}
    return [_pulse(task, latest.get(task.task)) for task in tasks]


def _pulse(task: PeriodicTask, result: TaskResult | None) -> Pulse:
    return Pulse(name=task.name, task=task.task, enabled=task.enabled, last_sent_at=task.last_run_at,
                 last_status=result.status if result else "no result yet",
                 last_done_at=result.date_done if result else None,
                 last_result=(result.result or "")[:80] if result else "")


def workers_seen() -> dict[str, Any]:
    """The last ping's answer, asked again once it is older than ``WORKERS_CACHE_SECONDS``.

    A ping waits out its timeout, and the Redis transport reads replies in
    whole seconds: about a second a page. Kept per web process, with the
    time it was asked, which the page shows.
    """
    seen = cache.get(WORKERS_CACHE_KEY)
    if seen is None:
        seen = ping_workers()
        cache.set(WORKERS_CACHE_KEY, seen, WORKERS_CACHE_SECONDS)
    return seen


def ping_workers() -> dict[str, Any]:
    """The workers that answer a ping within the timeout; an unreachable broker is said as such."""
    asked_at = f"{timezone.now():%H:%M:%S} UTC"
    try:
        replies = current_app.control.ping(timeout=PING_TIMEOUT_SECONDS)
    except Exception as error:  # the page says any broker failure instead of failing itself
        return {"names": [], "error": f"broker unreachable: {type(error).__name__}: {error}"[:200],
                "asked_at": asked_at}
    return {"names": sorted(name for reply in replies for name in reply), "error": "", "asked_at": asked_at}


def open_alerts(scope: QuerySet[Workspace] | None, limit: int = 10) -> list[Any]:
    """Open alert episodes, newest first, when the alerts app is installed."""
    if not apps.is_installed("alerts"):
        return []
    alert = apps.get_model("alerts", "Alert")
    found = alert.objects.filter(resolved_at__isnull=True).order_by("-last_raised_at")
    if scope is not None:
        found = found.filter(workspace__in=scope)
    return list(found[:limit])

"""``/metrics``: Prometheus text format, the counters of every process plus gauges read from PostgreSQL.

The counters (``core.metrics``) come from every process's files under
``PROMETHEUS_MULTIPROC_DIR`` (gunicorn workers, Celery prefork children, the
beat); without that directory, from this process only. The gauges are read
here, at scrape time, in one place (``database_gauges``): one query per gauge,
each through an index, so every scrape agrees with the ledger whichever node
answers it.

Protected by ``TICKWISE_METRICS_TOKEN`` (``Authorization: Bearer <token>``):
unset, ``/metrics`` answers 403 saying so; a missing or wrong token, 401.
"""
from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Min, Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from runs.models import Run, RunState
from schedules.models import Schedule

AUTO_PAUSED = "auto-paused"  # the reason the failure streak pauses with (runs.services.ended)


def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.TICKWISE["METRICS_TOKEN"]
    if not token:
        return _text(403, "metrics are disabled: set TICKWISE_METRICS_TOKEN and scrape with "
                          "'Authorization: Bearer <token>'\n")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        response = _text(401, "a valid 'Authorization: Bearer <TICKWISE_METRICS_TOKEN>' header is required\n")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(_Database(now=timezone.now()))
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class _ThisProcess(Collector):
    """The default registry's metrics (one process: no multiprocess directory)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class _Database(Collector):
    def __init__(self, *, now: datetime) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        yield from database_gauges(now=self.now)


def database_gauges(*, now: datetime) -> list[GaugeMetricFamily]:
    """Due lag, dead-letter depth, schedules by state: the gauges that describe the database."""
    oldest_due = Schedule.objects.due(now=now).aggregate(oldest=Min("next_fire_at"))["oldest"]
    lag = GaugeMetricFamily("tickwise_due_lag_seconds", "Now minus the oldest due next_fire_at (0 when none is "
                                                        "due): how far the beat is behind.")
    lag.add_metric([], max(0.0, (now - oldest_due).total_seconds()) if oldest_due else 0.0)
    dead = GaugeMetricFamily("tickwise_dead_letter_depth", "Runs in the dead-letter queue (state dead).")
    dead.add_metric([], Run.objects.filter(state=RunState.DEAD).count())
    return [lag, dead, _schedules_by_state()]


def _schedules_by_state() -> GaugeMetricFamily:
    """Live schedules: active, paused (by a person or a rule), auto_paused (the failure streak), finished."""
    auto = Q(paused=True, paused_reason__startswith=AUTO_PAUSED)
    # Aggregate names must not be field names (``paused``): prefixed, then stripped.
    counts = Schedule.objects.live().aggregate(
        state_finished=Count("id", filter=~Q(finished_reason="")),
        state_auto_paused=Count("id", filter=Q(finished_reason="") & auto),
        state_paused=Count("id", filter=Q(finished_reason="", paused=True) & ~auto),
        state_active=Count("id", filter=Q(finished_reason="", paused=False)))
    family = GaugeMetricFamily("tickwise_schedules", "Live schedules by state.", labels=["state"])
    for name, count in counts.items():
        family.add_metric([name.removeprefix("state_")], count)
    return family

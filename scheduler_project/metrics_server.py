"""A metrics port for the beat and the workers, for hosts (containers) that run no web process.

``/metrics`` on the web adds up the counters of every process that shares its
``PROMETHEUS_MULTIPROC_DIR``, which only processes of one host can do (the
files are named by PID). A worker or beat in a container of its own sets
``TICKWISE_METRICS_BIND`` (``host:port``) and its main process serves that
host's counters there, in the Prometheus text format, for Prometheus to scrape
each such container. No token and no database gauges (the web's ``/metrics``
has those): bind it to a private network only.
"""
from __future__ import annotations

import os
from typing import Any

from django.core.exceptions import ImproperlyConfigured

ENV = "TICKWISE_METRICS_BIND"


def bind_address(raw: str) -> tuple[str, int]:
    host, _, port = raw.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ImproperlyConfigured(f"{ENV} must be host:port (e.g. 0.0.0.0:9100), got {raw!r}")
    return host, int(port)


def connect_celery(signals: Any) -> None:
    """With ``TICKWISE_METRICS_BIND`` set, serve metrics from the worker's or the beat's main process."""
    raw = os.environ.get(ENV, "")
    if not raw.strip():
        return
    address = bind_address(raw)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        raise ImproperlyConfigured(f"{ENV} needs PROMETHEUS_MULTIPROC_DIR (./tickwise sets it): a worker's runs "
                                   "are counted in its pool processes, not in the process that serves the port")

    def serve(**kwargs: Any) -> None:
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        start_http_server(address[1], addr=address[0], registry=registry)

    signals.worker_init.connect(serve, weak=False)
    signals.beat_init.connect(serve, weak=False)

"""Logging: plain text by default, or one JSON object per line (``TICKWISE_LOG_FORMAT=json``).

Each JSON line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and
``message``, and, on every line logged while a run is executed, its
``run_id``, ``schedule_id``, ``trigger`` and ``chain_id`` (``core.logcontext``).
An exception adds ``exc``. Celery's own lines (the worker's and the beat's)
go through the same handler when the format is json, so a log shipper reads
one format.
"""
from __future__ import annotations

import json
import logging
import logging.config
import os
from datetime import UTC, datetime
from typing import Any

from core.logcontext import EMPTY

PLAIN = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        for name in EMPTY:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def logging_config(fmt: str, *, level: str) -> dict[str, Any]:
    """``settings.LOGGING`` for a format (``plain`` or ``json``)."""
    formatter: dict[str, Any] = {"()": JsonFormatter} if fmt == "json" else {"format": PLAIN}
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"run_context": {"()": "core.logcontext.RunContextFilter"}},
        "formatters": {"main": formatter},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "main", "filters": ["run_context"]}},
        "loggers": {"tickwise": {"handlers": ["console"], "level": level, "propagate": False}},
    }
    if fmt == "json":
        # Everything else too (Django, Celery): one format per stream.
        config["root"] = {"handlers": ["console"], "level": "INFO"}
    return config


def connect_celery(signals: Any) -> None:
    """With json logs, keep Celery from installing its own text handlers (``setup_logging`` has a receiver).

    Read from the environment, as ``settings.LOG_FORMAT`` is: the Celery app
    is imported before Django's settings are.
    """
    if os.environ.get("TICKWISE_LOG_FORMAT", "").strip() == "json":
        signals.setup_logging.connect(_configured_by_django, weak=False)


def _configured_by_django(**kwargs: Any) -> None:
    from django.conf import settings  # the worker's Django is set up by then (Celery's Django fixup)

    logging.config.dictConfig(settings.LOGGING)

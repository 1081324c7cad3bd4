"""The run a log line is about: run id, schedule id, trigger and chain on every line logged for it.

``run_bound`` sets a context variable for the length of a run's execution;
``RunContextFilter`` (installed on the handlers by ``settings.LOGGING``) copies
it onto each record, so the JSON formatter (``scheduler_project.logs``) and
any other formatter can print it. A context variable, not a thread-local:
the heartbeat thread and anything else started inside the block see it only
if they copy the context, and nothing leaks to the next task of a worker.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypedDict


class RunFields(TypedDict):
    run_id: int | None
    schedule_id: int | None
    trigger: str | None
    chain_id: str | None


EMPTY: RunFields = {"run_id": None, "schedule_id": None, "trigger": None, "chain_id": None}
_current: ContextVar[RunFields] = ContextVar("tickwise_run", default=EMPTY)


@contextmanager
def run_bound(run_id: int, *, schedule_id: int | None, trigger: str, chain_id: str | None) -> Iterator[None]:
    token = _current.set({"run_id": run_id, "schedule_id": schedule_id, "trigger": str(trigger),
                          "chain_id": chain_id or None})
    try:
        yield
    finally:
        _current.reset(token)


def current() -> RunFields:
    return _current.get()


class RunContextFilter(logging.Filter):
    """Adds ``run_id``, ``schedule_id``, ``trigger`` and ``chain_id`` to every record (None outside a run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _current.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True

